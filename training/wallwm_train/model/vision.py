"""Vision encoder: a shared conv patch stem for 1..N cameras, plus patch and camera embeddings."""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig


class VisionEncoder(nn.Module):
    """(B, N_cam, 3, H, W) RGB in [0, 1] -> (B, N_cam * P, D) tokens, P = (H / patch) ** 2.

    Two strided convs (stride 4, then patch / 4) are the cheapest stem that still sees local
    structure inside a patch; weights are shared across cameras, a learned camera embedding tells
    the views apart.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        side = cfg.image_size // cfg.patch_size
        self.stem = nn.Sequential(
            nn.Conv2d(3, cfg.stem_channels, kernel_size=4, stride=4),
            nn.GELU(),
            nn.Conv2d(
                cfg.stem_channels,
                cfg.dim,
                kernel_size=cfg.patch_size // 4,
                stride=cfg.patch_size // 4,
            ),
        )
        self.patch_embed = nn.Parameter(torch.randn(side * side, cfg.dim) * 0.02)
        self.camera_embed = nn.Parameter(torch.randn(len(cfg.cameras), cfg.dim) * 0.02)
        self.num_cameras = len(cfg.cameras)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = images.shape
        x = self.stem(images.reshape(b * n, c, h, w) * 2.0 - 1.0)  # (B*N, D, h', w')
        x = x.flatten(2).transpose(1, 2)  # (B*N, P, D)
        x = x + self.patch_embed[None]
        x = x.reshape(b, n, -1, x.shape[-1]) + self.camera_embed[None, :, None]
        return x.reshape(b, -1, x.shape[-1])  # (B, N*P, D)
