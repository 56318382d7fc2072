"""Vision encoder: a shared conv patch stem for 1..N cameras, plus patch and camera embeddings,
and optionally one spatial-softmax keypoint token per keypoint and camera."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wallwm_train.config import ModelConfig


class SpatialKeypoints(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, K, D): one token per learned heatmap, from its expected
    (x, y) and how peaked it is.

    A 16-pixel patch token says roughly where a 4 cm cube is; grasping it needs about a
    centimetre. The softmax-weighted mean over a half-resolution heatmap localises a coloured
    object to a fraction of a pixel (spatial softmax, Levine et al. 2016, as in robomimic and
    Diffusion Policy) for a few percent of the network's compute. Each keypoint is its own token
    (its identity is its position embedding) so that the event's words can attend to the one
    heatmap that tracks the object they name; packed into one token, the model has to unmix them.
    The peak (log of the largest weight times the number of cells, 0 for a flat map) says whether
    the heatmap found anything at all.
    """

    def __init__(self, image_size: int, channels: int, keypoints: int, dim: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=4, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv2d(channels, keypoints, kernel_size=1),
        )
        side = image_size // 2
        coords = torch.linspace(-1.0, 1.0, side)
        ys, xs = torch.meshgrid(coords, coords, indexing='ij')
        self.register_buffer('grid', torch.stack([xs.flatten(), ys.flatten()], -1), False)
        self.log_cells = float(np.log(side * side))
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.project = nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))

    def points(self, images: torch.Tensor) -> torch.Tensor:
        """-> (B, K, 3): heatmap centre (x, y) in [-1, 1] from the image's left/top edge, and
        peak in [0, 1] (0: a flat map, 1: all weight on one cell)."""
        heat = self.features(images).flatten(2)  # (B, K, h * w)
        weights = torch.softmax(heat * self.log_temperature.exp(), dim=-1)
        peak = (weights.amax(dim=-1, keepdim=True).log() + self.log_cells) / self.log_cells
        return torch.cat([weights @ self.grid, peak], dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.points(images))


class VisionEncoder(nn.Module):
    """(B, N_cam, 3, H, W) RGB in [0, 1] -> (B, N_cam * P, D) tokens, P = (H / patch) ** 2
    + `keypoints`.

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
        self.keypoints = (
            SpatialKeypoints(cfg.image_size, cfg.stem_channels // 2, cfg.keypoints, cfg.dim)
            if cfg.keypoints
            else None
        )
        tokens = side * side + cfg.keypoints
        self.patch_embed = nn.Parameter(torch.randn(tokens, cfg.dim) * 0.02)
        self.camera_embed = nn.Parameter(torch.randn(len(cfg.cameras), cfg.dim) * 0.02)
        self.num_cameras = len(cfg.cameras)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = images.shape
        pixels = images.reshape(b * n, c, h, w) * 2.0 - 1.0
        x = self.stem(pixels).flatten(2).transpose(1, 2)  # (B*N, P, D)
        if self.keypoints is not None:
            x = torch.cat([x, self.keypoints(pixels)], dim=1)
        x = x + self.patch_embed[None]
        x = x.reshape(b, n, -1, x.shape[-1]) + self.camera_embed[None, :, None]
        return x.reshape(b, -1, x.shape[-1])  # (B, N*P, D)
