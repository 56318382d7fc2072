"""Event goal: where the event caption says the arm should end up, read straight off the images.

The flow-matching loss alone does not teach the encoder to find the object an event names: the
default reached 6 cm from it, on its own training layouts as well as new ones. Keypoints whose
heatmaps the caption steers (FiLM), regressed directly onto the event's end state, find it
within 0.84 cm on new layouts (training/README.md, "Event goal"). This module is that pairing
inside the model: caption-conditioned keypoints, a goal head trained on the event's end joint
state, and one token carrying both into the event block.

The goal is read from the images alone, not from the arm's state: with the state, events that
end near where they start (a grasp from above the object) are solved without looking, and only
reaches teach the keypoints; without it every event does (reaches on new layouts, 1500 steps:
0.84 cm median with the state withheld, 0.92 cm with it and 15% more misses beyond 2 cm).
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.vision import SpatialKeypoints
from wallwm_train.model.vision import TextFiLM


class EventGoal(nn.Module):
    """images (B, N, 3, H, W) in [0, 1], caption tokens (B, T, D) -> token (B, 1, D) for the
    event block, goal (B, J): the predicted normalised joint state at the event's end."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        channels = cfg.stem_channels // 2
        self.film = TextFiLM(cfg.dim, channels)
        self.keypoints = SpatialKeypoints(
            cfg.image_size, channels, cfg.event_keypoints, None, standardise=True
        )
        features = len(cfg.cameras) * cfg.event_keypoints * 2
        self.goal = nn.Sequential(
            nn.Linear(features, cfg.dim),
            nn.GELU(),
            nn.Linear(cfg.dim, cfg.dim),
            nn.GELU(),
            nn.Linear(cfg.dim, cfg.num_joints),
        )
        self.token = nn.Linear(features + cfg.num_joints, cfg.dim)

    def forward(
        self,
        images: torch.Tensor,
        caption: torch.Tensor,
        caption_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, c, h, w = images.shape
        scale, shift = self.film(caption, caption_valid)
        film = (scale.repeat_interleave(n, 0), shift.repeat_interleave(n, 0))
        pixels = images.reshape(b * n, c, h, w) * 2.0 - 1.0
        points = self.keypoints.points(pixels, film).reshape(b, -1)  # (B, N * K * 2)
        goal = self.goal(points)
        return self.token(torch.cat([points, goal], dim=-1))[:, None], goal
