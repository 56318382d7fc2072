"""Vision encoder: a shared conv patch stem for 1..N cameras, plus patch and camera embeddings,
and optionally a spatial-softmax keypoint token per camera; FiLM from text for keypoints that
follow what the words name (model/event_goal.py)."""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig


class SpatialKeypoints(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, D): expected (x, y) of K learned heatmaps, as one token.

    A 16-pixel patch token says roughly where a 4 cm cube is; grasping it needs about a
    centimetre. The softmax-weighted mean over a half-resolution heatmap localises a coloured
    object to a fraction of a pixel (spatial softmax, Levine et al. 2016, as in robomimic and
    Diffusion Policy) for a few percent of the network's compute.
    """

    def __init__(
        self,
        image_size: int,
        channels: int,
        keypoints: int,
        dim: int | None,
        standardise: bool = False,
    ):
        super().__init__()
        self.standardise = standardise
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
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.project = nn.Linear(2 * keypoints, dim) if dim else None  # None: points() only

    def points(
        self, images: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """-> (B, K, 2) heatmap centres, (x, y) in [-1, 1] from the image's left/top edge.

        `film` (scale, shift), each (B, C), modulates the hidden channels before the heatmaps.
        """
        first, act, second, act2, heatmaps = self.features
        hidden = second(act(first(images)))
        if film is not None:
            scale, shift = film
            hidden = hidden * scale[:, :, None, None] + shift[:, :, None, None]
        heat = heatmaps(act2(hidden)).flatten(2)  # (B, K, h * w)
        if self.standardise:
            # Over each heatmap's pixels: a fresh conv's heat varies by ~0.01 across the image,
            # so a raw softmax is uniform, every keypoint sits at the centre and almost no
            # gradient reaches the features. Standardised, a small object stands ~10 above the
            # table from the first step, whatever scale the features drift to.
            heat = nn.functional.layer_norm(heat, heat.shape[-1:])
        weights = torch.softmax(heat * self.log_temperature.exp(), dim=-1)
        return weights @ self.grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.points(images).flatten(1))


class TextFiLM(nn.Module):
    """Text tokens (B, T, D) -> per-channel (scale, shift) for the keypoint heatmaps.

    Unconditioned heatmaps must track every object in the scene and leave the backbone to pick
    the named one out of a packed token; with FiLM (Perez et al. 2018, as in RT-1 and BC-Z) the
    words choose what the heatmaps respond to, so a keypoint can sit on the object the task
    names. Tokens pass a nonlinearity before the masked mean so that word order (which cube goes
    on which) survives the pooling. Zero-initialised: training starts from the unconditioned
    encoder.
    """

    def __init__(self, dim: int, channels: int):
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, dim), nn.GELU())
        self.out = nn.Linear(dim, 2 * channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, text: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weights = valid.float()[..., None]  # (B, T, 1)
        pooled = (self.token(text) * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        scale, shift = self.out(pooled).chunk(2, dim=-1)
        return 1.0 + scale, shift


class VisionEncoder(nn.Module):
    """(B, N_cam, 3, H, W) RGB in [0, 1] -> (B, N_cam * P, D) tokens, P = (H / patch) ** 2
    (+ 1 keypoint token per camera when `keypoints` > 0).

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
        tokens = side * side + (1 if cfg.keypoints else 0)
        self.patch_embed = nn.Parameter(torch.randn(tokens, cfg.dim) * 0.02)
        self.camera_embed = nn.Parameter(torch.randn(len(cfg.cameras), cfg.dim) * 0.02)
        self.num_cameras = len(cfg.cameras)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = images.shape
        pixels = images.reshape(b * n, c, h, w) * 2.0 - 1.0
        x = self.stem(pixels).flatten(2).transpose(1, 2)  # (B*N, P, D)
        if self.keypoints is not None:
            x = torch.cat([x, self.keypoints(pixels)[:, None]], dim=1)
        x = x + self.patch_embed[None]
        x = x.reshape(b, n, -1, x.shape[-1]) + self.camera_embed[None, :, None]
        return x.reshape(b, -1, x.shape[-1])  # (B, N*P, D)
