"""The WALL-WM network: encoders, block-causal backbone, Staircase thoughts, caption decoder,
flow-matching action expert and event heads, with one loss per objective.

The methods below are the export boundaries (each is one ONNX graph's body): the network is
written for export, static shapes and no data-dependent Python branches.

    encode_observation  images, state, instruction -> prefix cache, prefix states
    encode_event        prefix cache + event text  -> event states           (event mode)
                        (+ images with event_keypoints: a goal token first)
    think               prefix cache               -> thoughts (B, K, D)     (unified mode)
    decode_caption      thoughts                   -> caption ids            (unified mode)
    act                 memory + noise             -> actions, boundary, progress
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train import keys
from wallwm_train.config import MODE_CHUNK
from wallwm_train.config import MODE_EVENT
from wallwm_train.config import MODE_UNIFIED
from wallwm_train.config import ModelConfig
from wallwm_train.config import TrainConfig
from wallwm_train.model.action_expert import ActionExpert
from wallwm_train.model.backbone import Backbone
from wallwm_train.model.caption import CaptionDecoder
from wallwm_train.model.event_goal import EventGoal
from wallwm_train.model.heads import FutureHead
from wallwm_train.model.heads import SegmentHeads
from wallwm_train.model.proprio import ProprioEncoder
from wallwm_train.model.staircase import Staircase
from wallwm_train.model.text import SEGMENT_EVENT
from wallwm_train.model.text import SEGMENT_INSTRUCTION
from wallwm_train.model.text import TextEmbedding
from wallwm_train.model.vision import VisionEncoder


class WallWM(nn.Module):
    """Built for a set of modes; modules a mode does not use are not created (DDP-friendly)."""

    def __init__(self, cfg: ModelConfig, modes: tuple[str, ...]):
        super().__init__()
        self.cfg = cfg
        self.modes = tuple(modes)
        self.vision = VisionEncoder(cfg)
        self.proprio = ProprioEncoder(cfg)
        self.text = TextEmbedding(cfg)
        self.backbone = Backbone(cfg)
        self.expert = ActionExpert(cfg)
        evented = MODE_EVENT in modes or MODE_UNIFIED in modes
        self.caption = CaptionDecoder(cfg) if evented else None
        self.heads = SegmentHeads(cfg) if evented else None
        self.future = FutureHead(cfg) if evented else None
        self.staircase = Staircase(cfg) if MODE_UNIFIED in modes else None
        self.event_goal = (
            EventGoal(cfg) if MODE_EVENT in modes and cfg.event_keypoints else None
        )
        if cfg.init_text_from_minilm:
            self.text.init_from_minilm()

    # ---- export boundaries -----------------------------------------------------------------

    def encode_observation(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        instruction_ids: torch.Tensor,
        instruction_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> prefix_cache (B, L, P, D), prefix_states (B, P, D), prefix_valid (B, P) float."""
        tokens = torch.cat(
            [
                self.vision(images),
                self.proprio(state),
                self.text(instruction_ids, SEGMENT_INSTRUCTION),
            ],
            dim=1,
        )
        batch = images.shape[0]
        valid = torch.cat(
            [
                torch.ones(batch, self.cfg.image_tokens + 1, device=images.device),
                instruction_mask.float(),
            ],
            dim=1,
        )  # (B, P)
        cache, states = self.backbone.encode_prefix(tokens, valid)
        return cache, states, valid

    def encode_event(
        self,
        prefix_cache: torch.Tensor,
        prefix_valid: torch.Tensor,
        event_ids: torch.Tensor,
        event_mask: torch.Tensor,
        images: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> event_states (B, Te [+1], D): the caption tokens (after the goal token, with
        event_keypoints) after every backbone layer; the predicted end joint state (B, J) or
        None."""
        x = self.text(event_ids, SEGMENT_EVENT)
        goal = None
        if self.event_goal is not None:
            token, goal = self.event_goal(images, x, event_mask)
            x = torch.cat([token, x], dim=1)
        valid = self.event_valid(event_mask)
        return self.backbone.encode_block(x, valid, prefix_cache, prefix_valid), goal

    def event_valid(self, event_mask: torch.Tensor) -> torch.Tensor:
        """(B, Te) caption mask -> (B, Te [+1]) float validity of the event states."""
        valid = event_mask.float()
        if self.event_goal is None:
            return valid
        return torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)

    def think(self, prefix_cache: torch.Tensor, prefix_valid: torch.Tensor) -> torch.Tensor:
        """-> thoughts (B, K, D): Staircase Decoding of the event to execute."""
        return self.staircase(self.backbone, prefix_cache, prefix_valid)

    def decode_caption(self, thoughts: torch.Tensor) -> torch.Tensor:
        """-> caption_ids (B, Te) int64, greedy."""
        valid = torch.ones(thoughts.shape[:2], device=thoughts.device)
        return self.caption.greedy(self.text, thoughts, valid)

    def act(
        self,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
        noise: torch.Tensor,
        with_heads: bool,
    ) -> tuple[torch.Tensor, ...]:
        """memory (B, M, D) -> actions (B, A, J) [, boundary_logits (B, A), progress (B, A)]."""
        actions = self.expert.sample(noise, memory, memory_valid)
        if not with_heads:
            return (actions,)
        boundary, progress = self.heads(noise.shape[1], memory, memory_valid)
        return actions, boundary, progress

    # ---- memories (what the action expert reads) -------------------------------------------

    @staticmethod
    def join(
        states: torch.Tensor, valid: torch.Tensor, block: torch.Tensor, block_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([states, block], dim=1), torch.cat([valid, block_valid.float()], dim=1)

    # ---- training ---------------------------------------------------------------------------

    def forward(
        self, batch: dict[str, torch.Tensor], train: TrainConfig
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.loss(batch, train)

    def loss(
        self, batch: dict[str, torch.Tensor], train: TrainConfig
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of every objective of every mode -> (total, {name: value})."""
        cache, states, valid = self.encode_observation(
            batch[keys.IMAGES],
            batch[keys.STATE],
            batch[keys.INSTRUCTION_IDS],
            batch[keys.INSTRUCTION_MASK],
        )
        parts: dict[str, torch.Tensor] = {}
        t = batch[keys.FLOW_T]
        if MODE_EVENT in self.modes:
            e_cache, e_states, e_valid = cache, states, valid
            if not self.cfg.event_reads_instruction:
                e_cache, e_states, e_valid = self.encode_observation(
                    batch[keys.IMAGES],
                    batch[keys.STATE],
                    batch[keys.BLANK_INSTRUCTION_IDS],
                    batch[keys.BLANK_INSTRUCTION_MASK],
                )
            event, goal = self.encode_event(
                e_cache,
                e_valid,
                batch[keys.EVENT_IDS],
                batch[keys.EVENT_MASK],
                batch[keys.IMAGES],
            )
            event_valid = self.event_valid(batch[keys.EVENT_MASK])
            memory, mem_valid = self.join(e_states, e_valid, event, event_valid)
            if goal is not None:
                parts['event/goal'] = _demonstrated_mean(goal - batch[keys.FUTURE_STATE], batch)
            seg_valid = batch[keys.SEGMENT_VALID]
            parts['event/action'] = self.expert.loss(
                batch[keys.SEGMENT_ACTIONS],
                seg_valid,
                memory,
                mem_valid,
                batch[keys.SEGMENT_NOISE],
                t,
            )
            self._event_heads(
                parts,
                'event',
                memory,
                mem_valid,
                batch[keys.SEGMENT_BOUNDARY],
                seg_valid,
                batch[keys.SEGMENT_PROGRESS],
                seg_valid,
            )
            parts['event/next_caption'] = self.caption.loss(
                self.text, batch[keys.NEXT_EVENT_IDS], memory, mem_valid
            )
            self._future(parts, 'event', memory, mem_valid, batch)
        if MODE_UNIFIED in self.modes:
            # Thoughts from an observation between the event's start and t (the runtime computes
            # them when the event begins), the chunk from the observation at t.
            think_cache, _, think_valid = self.encode_observation(
                batch[keys.THINK_IMAGES],
                batch[keys.THINK_STATE],
                batch[keys.INSTRUCTION_IDS],
                batch[keys.INSTRUCTION_MASK],
            )
            thoughts = self.think(think_cache, think_valid)
            ones = torch.ones(thoughts.shape[:2], device=thoughts.device)
            memory, mem_valid = self.join(states, valid, thoughts, ones)
            parts['unified/action'] = self.expert.loss(
                batch[keys.CHUNK_ACTIONS],
                batch[keys.CHUNK_VALID],
                memory,
                mem_valid,
                batch[keys.CHUNK_NOISE],
                t,
            )
            self._event_heads(
                parts,
                'unified',
                memory,
                mem_valid,
                batch[keys.CHUNK_BOUNDARY],
                batch[keys.CHUNK_VALID],
                batch[keys.CHUNK_PROGRESS],
                batch[keys.CHUNK_IN_EVENT],
            )
            parts['unified/caption'] = self.caption.loss(
                self.text, batch[keys.EVENT_IDS], thoughts, ones
            )
            self._future(parts, 'unified', memory, mem_valid, batch)
        if MODE_CHUNK in self.modes:
            parts['chunk/action'] = self.expert.loss(
                batch[keys.CHUNK_ACTIONS],
                batch[keys.CHUNK_VALID],
                states,
                valid,
                batch[keys.CHUNK_NOISE],
                t,
            )
        weights = {
            'action': 1.0,
            'caption': train.caption_weight,
            'next_caption': train.caption_weight,
            'boundary': train.boundary_weight,
            'progress': train.progress_weight,
            'future': train.future_weight,
            'future_state': train.future_state_weight,
            'goal': train.event_goal_weight,
        }
        total = sum(weights[name.split('/')[1]] * value for name, value in parts.items())
        return total, parts

    def _future(self, parts, prefix, memory, mem_valid, batch) -> None:
        frame, state = self.future(memory, mem_valid)
        parts[f'{prefix}/future'] = _demonstrated_mean(frame - batch[keys.FUTURE], batch)
        parts[f'{prefix}/future_state'] = _demonstrated_mean(
            state - batch[keys.FUTURE_STATE], batch
        )

    def _event_heads(
        self, parts, prefix, memory, mem_valid, boundary, boundary_valid, progress, progress_valid
    ) -> None:
        logits, pred = self.heads(boundary.shape[1], memory, mem_valid)
        bce = nn.functional.binary_cross_entropy_with_logits(logits, boundary, reduction='none')
        parts[f'{prefix}/boundary'] = (bce * boundary_valid).sum() / boundary_valid.sum().clamp(
            min=1.0
        )
        parts[f'{prefix}/progress'] = (
            (pred - progress).pow(2) * progress_valid
        ).sum() / progress_valid.sum().clamp(min=1.0)


def _demonstrated_mean(error: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean squared error over the samples whose event was demonstrated: where the expert erred
    on purpose (noise injection), the event's end is not where its caption says it should be."""
    weight = batch[keys.EVENT_IMITATE].to(error.dtype)
    per_sample = error.pow(2).flatten(1).mean(1)
    return (per_sample * weight).sum() / weight.sum().clamp(min=1.0)
