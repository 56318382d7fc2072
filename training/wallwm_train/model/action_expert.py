"""Flow-matching action expert: denoises an action sequence conditioned on backbone states.

Rectified flow: x_t = (1 - t) * noise + t * actions, the network predicts the velocity
actions - noise, and sampling integrates dx/dt = v from t = 0 (the runtime's `noise`) to t = 1
with `flow_steps` Euler steps. The expert's tokens are the action steps; each layer attends to
all steps and cross-attends to the backbone's final hidden states (prefix + event block), which
is what carries the action loss back into the backbone.
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.layers import CrossBlock
from wallwm_train.model.layers import key_bias
from wallwm_train.model.layers import sinusoidal

TIME_FEATURES = 64


class ActionExpert(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dim = cfg.expert_dim
        max_steps = max(cfg.event_action_steps, cfg.chunk_steps)
        self.flow_steps = cfg.flow_steps
        self.action_in = nn.Linear(cfg.num_joints, dim)
        self.position = nn.Parameter(torch.randn(max_steps, dim) * 0.02)
        self.time_mlp = nn.Sequential(
            nn.Linear(TIME_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        self.memory_norm = nn.LayerNorm(cfg.dim)
        self.layers = nn.ModuleList(
            CrossBlock(dim, cfg.expert_heads, cfg.mlp_ratio, cfg.dim)
            for _ in range(cfg.expert_depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.action_out = nn.Linear(dim, cfg.num_joints)

    def velocity(
        self, x_t: torch.Tensor, t: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> torch.Tensor:
        """x_t (B, A, J), t (B,), memory (B, M, D), memory_valid (B, M) -> velocity (B, A, J)."""
        steps = x_t.shape[1]
        h = self.action_in(x_t) + self.position[None, :steps]
        h = h + self.time_mlp(sinusoidal(t, TIME_FEATURES))[:, None]
        mem = self.memory_norm(memory)
        mem_bias = key_bias(memory_valid)
        self_bias = torch.zeros(1, 1, steps, steps, device=x_t.device)
        for layer in self.layers:
            h = layer(h, self_bias, mem, mem_bias)
        return self.action_out(self.norm(h))

    def loss(
        self,
        actions: torch.Tensor,
        valid: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
        noise: torch.Tensor,
        t: torch.Tensor,
    ) -> torch.Tensor:
        """Masked flow-matching MSE. actions/noise (B, A, J), valid (B, A), t (B,)."""
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        err = (self.velocity(x_t, t, memory, memory_valid) - (actions - noise)).pow(2).mean(-1)
        return (err * valid).sum() / valid.sum().clamp(min=1.0)

    def sample(
        self, noise: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> torch.Tensor:
        """Euler integration from noise (B, A, J) -> actions (B, A, J)."""
        x = noise
        dt = 1.0 / self.flow_steps
        for i in range(self.flow_steps):
            t = torch.full((noise.shape[0],), i * dt, device=noise.device)
            x = x + dt * self.velocity(x, t, memory, memory_valid)
        return x
