"""Event heads: per-step boundary logit and progress, and the future-observation head.

Boundary and progress are read per action step by learned step queries that attend to the
backbone states (one `CrossBlock`); they tell the runtime where the event ends inside a segment
or chunk. The future head predicts the end-of-event frame of every camera downsampled to
`future_size` and the joint state then (the "world" targets of the world action model;
training-only).
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.layers import CrossBlock
from wallwm_train.model.layers import key_bias


class SegmentHeads(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        max_steps = max(cfg.event_action_steps, cfg.chunk_steps)
        self.queries = nn.Parameter(torch.randn(max_steps, cfg.dim) * 0.02)
        self.memory_norm = nn.LayerNorm(cfg.dim)
        self.block = CrossBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dim)
        self.norm = nn.LayerNorm(cfg.dim)
        self.out = nn.Linear(cfg.dim, 2)

    def forward(
        self, steps: int, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> boundary_logits (B, A), progress (B, A) in [0, 1]."""
        batch = memory.shape[0]
        q = self.queries[None, :steps].expand(batch, -1, -1)
        self_bias = torch.zeros(1, 1, steps, steps, device=memory.device)
        h = self.block(q, self_bias, self.memory_norm(memory), key_bias(memory_valid))
        out = self.out(self.norm(h))  # (B, A, 2)
        return out[..., 0], torch.sigmoid(out[..., 1])


class FutureHead(nn.Module):
    """Where the event leaves the world: its end frame, and the arm's joint state then.

    The end state is the event's goal in joint space (above *this* cube, on *that* pad). A
    regression target for it teaches the backbone to localise what the event names far sooner
    than the noisy flow-matching loss alone does.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.shape = (len(cfg.cameras), 3, cfg.future_size, cfg.future_size)
        size = len(cfg.cameras) * 3 * cfg.future_size**2
        self.net = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.dim), nn.GELU())
        self.frame = nn.Linear(cfg.dim, size)
        self.state = nn.Linear(cfg.dim, cfg.num_joints)

    def forward(
        self, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked mean of the memory -> frame (B, N_cam, 3, f, f) in [0, 1], state (B, J)."""
        w = memory_valid.float()[..., None]
        pooled = (memory * w).sum(1) / w.sum(1).clamp(min=1.0)
        h = self.net(pooled)
        return torch.sigmoid(self.frame(h)).view(-1, *self.shape), self.state(h)
