"""Proprioception encoder: normalised joint state -> one backbone token."""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig


class ProprioEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.num_joints, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim)
        )

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)[:, None]  # (B, J) -> (B, 1, D)
