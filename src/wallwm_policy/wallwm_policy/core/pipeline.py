"""One mode of a bundle as a graph pipeline over a dict of named tensors (docs/contracts.md).

`per_event` graphs run once per event and their outputs are cached (unified mode: the Staircase
thoughts and the decoded caption); `per_step` graphs run for every plan. The runtime provides the
observation, text and noise tensors and reads `actions`, `boundary_logits` and `progress`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from wallwm_policy.core import manifest as mf
from wallwm_policy.core.bundle import Bundle
from wallwm_policy.core.preprocess import Normalizer
from wallwm_policy.core.preprocess import images_tensor
from wallwm_policy.core.preprocess import resize_rgb


class ModelOutputError(RuntimeError):
    """The model produced something the arm must not execute (NaN, inf)."""


@dataclass(frozen=True)
class Observation:
    """What the policy sees at one control step."""

    stamp: float                    # seconds (ROS time) of the synchronised inputs
    images: Mapping[str, np.ndarray]  # camera name -> (h, w, 3) uint8 RGB, any size
    positions: np.ndarray           # (J,) rad, bundle joint order


@dataclass(frozen=True)
class EventContext:
    """Per-event state: text tensors plus the cached outputs of the per_event graphs."""

    tensors: Mapping[str, np.ndarray]
    caption: str  # decoded next-event caption (unified); the given event text otherwise


@dataclass(frozen=True)
class Plan:
    """A chunk or segment the model decided, in robot units."""

    actions: np.ndarray    # (S, J) rad, absolute joint targets
    boundary: np.ndarray   # (S,) probability that the event ends at each step (0 in chunk mode)
    progress: np.ndarray   # (S,) progress through the event in [0, 1]
    inference_s: float     # wall time of the graphs (excluding preprocessing)
    preprocess_s: float    # wall time of resizing and normalisation


class ModePipeline:
    """Runs one mode (`event`, `unified` or `chunk`) of a loaded bundle."""

    def __init__(self, bundle: Bundle, mode: str):
        if mode not in bundle.manifest.modes:
            raise ValueError(f'bundle {bundle.manifest.bundle_id} does not offer mode {mode!r} '
                             f'(it offers {sorted(bundle.manifest.modes)})')
        m = bundle.manifest
        self.mode = mode
        self.spec = m.modes[mode]
        self._bundle = bundle
        self._graphs = bundle.graphs
        self._cameras = tuple(c.name for c in m.cameras)
        self._size = m.image_size
        self._state_norm = Normalizer.from_stats(m.normalization.state.mean,
                                                 m.normalization.state.std)
        self._action_norm = Normalizer.from_stats(m.normalization.action.mean,
                                                  m.normalization.action.std)
        self.num_joints = m.num_joints
        self.action_steps = self.spec.action_steps
        self.step_period = 1.0 / m.control_rate_hz

    @property
    def has_boundary(self) -> bool:
        return self.mode in (mf.MODE_EVENT, mf.MODE_UNIFIED)

    def observation_tensors(self, obs: Observation) -> dict[str, np.ndarray]:
        """`images` (1, N, 3, H, W) and `state` (1, J) for the graphs."""
        height, width = self._size
        frames = [resize_rgb(obs.images[name], height, width) for name in self._cameras]
        state = self._state_norm.normalize(np.asarray(obs.positions))[np.newaxis]  # (1, J)
        return {mf.IMAGES: images_tensor(frames), mf.STATE: state}

    def text_tensors(self, instruction: str, event_text: str) -> dict[str, np.ndarray]:
        """Token tensors; a mode that does not read the instruction gets the empty one."""
        tok = self._bundle.manifest.tokenizer
        if not self.spec.reads_instruction:
            instruction = ''
        instr_ids, instr_mask = self._bundle.tokenizer.encode(instruction, tok.instruction_tokens)
        event_ids, event_mask = self._bundle.tokenizer.encode(event_text, tok.event_tokens)
        return {mf.INSTRUCTION_IDS: instr_ids, mf.INSTRUCTION_MASK: instr_mask,
                mf.EVENT_IDS: event_ids, mf.EVENT_MASK: event_mask}

    def noise(self, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """The flow's start point; `scale` 0 makes sampling deterministic (the flow from 0)."""
        shape = (1, self.action_steps, self.num_joints)
        return (scale * rng.standard_normal(shape)).astype(np.float32)  # (1, S, J)

    def _run(self, names, tensors: dict[str, np.ndarray]) -> None:
        for name in names:
            tensors.update(self._graphs[name].run(tensors))

    def start_event(self, obs: Observation, instruction: str, event_text: str,
                    rng: np.random.Generator, noise_scale: float = 1.0) -> EventContext:
        """Run the per_event graphs (if any) and cache what they produce."""
        text = self.text_tensors(instruction, event_text)
        if not self.spec.per_event:
            return EventContext(tensors=text, caption=event_text)
        tensors = {**self.observation_tensors(obs), **text,
                   mf.NOISE: self.noise(rng, noise_scale)}
        provided = set(tensors)
        self._run(self.spec.per_event, tensors)
        cached = {k: v for k, v in tensors.items() if k not in provided}
        caption = event_text
        if mf.CAPTION_IDS in cached:
            caption = self._bundle.tokenizer.decode(cached[mf.CAPTION_IDS])
        return EventContext(tensors={**text, **cached}, caption=caption)

    def plan(self, obs: Observation, context: EventContext, rng: np.random.Generator,
             noise_scale: float = 1.0) -> Plan:
        """Run the per_step graphs on `obs`; raises ModelOutputError on non-finite outputs."""
        t0 = time.perf_counter()
        tensors = {**context.tensors, **self.observation_tensors(obs),
                   mf.NOISE: self.noise(rng, noise_scale)}
        t1 = time.perf_counter()
        self._run(self.spec.per_step, tensors)
        t2 = time.perf_counter()
        raw = tensors[mf.ACTIONS][0]                                   # (S, J) normalised
        if not np.all(np.isfinite(raw)):
            raise ModelOutputError('model returned non-finite actions')
        steps = raw.shape[0]
        if self.has_boundary:
            logits = tensors[mf.BOUNDARY_LOGITS][0].astype(np.float64)  # (S,)
            progress = tensors[mf.PROGRESS][0].astype(np.float64)       # (S,)
            if not (np.all(np.isfinite(logits)) and np.all(np.isfinite(progress))):
                raise ModelOutputError('model returned non-finite boundary or progress')
            boundary = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
            progress = np.clip(progress, 0.0, 1.0)
        else:
            boundary = np.zeros(steps)
            progress = np.zeros(steps)
        return Plan(actions=self._action_norm.denormalize(raw), boundary=boundary,
                    progress=progress, inference_s=t2 - t1, preprocess_s=t1 - t0)

    def warm_up(self, rng: np.random.Generator, repeats: int = 2) -> float:
        """Run the mode on a blank observation (first runs allocate); returns the last time."""
        m = self._bundle.manifest
        height, width = self._size
        blank = {c: np.zeros((height, width, 3), np.uint8) for c in self._cameras}
        obs = Observation(stamp=0.0, images=blank,
                          positions=np.asarray(m.normalization.state.mean))
        elapsed = 0.0
        for _ in range(repeats):
            context = self.start_event(obs, 'warm up', 'warm up', rng)
            elapsed = self.plan(obs, context, rng).inference_s
        return elapsed
