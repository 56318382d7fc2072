"""Input synchronisation by stamp, and the input checks that decide a hold.

Each camera and the joint state keep a few recent messages (already converted, or the reason
they were rejected). At each control tick the newest joint state is the reference; each camera
contributes its frame closest in stamp, which must lie within `tolerance_s`. Anything older than
`max_age_s` relative to the clock is stale. The first problem found is the hold reason.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wallwm_policy.core.pipeline import Observation

JOINT_STATES = 'joint_states'


@dataclass(frozen=True)
class SyncConfig:
    tolerance_s: float = 0.05   # cameras vs joint state: |stamp difference| allowed
    max_age_s: float = 0.5      # inputs older (or newer) than this vs the clock are stale
    depth: int = 8              # messages kept per input

    def __post_init__(self):
        if self.tolerance_s < 0 or self.max_age_s <= 0 or self.depth < 1:
            raise ValueError('sync: need tolerance_s >= 0, max_age_s > 0, depth >= 1')


@dataclass(frozen=True)
class _Entry:
    stamp: float
    value: Any         # converted payload, or None when rejected
    error: str = ''    # why it was rejected


class ObservationSync:
    """Latest inputs per source; `assemble(now)` gives an Observation or the reason to hold."""

    def __init__(self, cameras: Sequence[str], config: SyncConfig | None = None):
        self.cameras = tuple(cameras)
        self.config = config = config or SyncConfig()
        sources = (*self.cameras, JOINT_STATES)
        self._buffers = {name: deque(maxlen=config.depth) for name in sources}
        self.rejected = 0

    def clear(self) -> None:
        for buffer in self._buffers.values():
            buffer.clear()

    def add(self, source: str, stamp: float, value: Any = None, error: str = '') -> None:
        """Record a message from `source` (a camera name or JOINT_STATES); `error` rejects it."""
        if not math.isfinite(stamp):
            value, error, stamp = None, f'non-finite stamp {stamp}', 0.0
        if error:
            self.rejected += 1
        self._buffers[source].append(_Entry(stamp, value, error))

    def latest_positions(self) -> np.ndarray | None:
        """The newest valid joint positions (for holds), whatever their age."""
        for entry in reversed(self._buffers[JOINT_STATES]):
            if not entry.error:
                return entry.value
        return None

    def assemble(self, now: float) -> tuple[Observation | None, str]:
        """(observation, '') when inputs are fresh, valid and in sync; else (None, reason)."""
        max_age = self.config.max_age_s
        joints = self._buffers[JOINT_STATES]
        if not joints:
            return None, 'no joint state received'
        ref = joints[-1]
        if ref.error:
            return None, f'joint state rejected: {ref.error}'
        age = now - ref.stamp
        if abs(age) > max_age:
            return None, f'joint state stale ({age:.3f} s old, limit {max_age:.3f} s)'
        images = {}
        for name in self.cameras:
            buffer = self._buffers[name]
            if not buffer:
                return None, f'no image from camera {name}'
            if buffer[-1].error:
                return None, f'camera {name} rejected: {buffer[-1].error}'
            valid = [e for e in buffer if not e.error]
            best = min(valid, key=lambda e: abs(e.stamp - ref.stamp))
            offset = best.stamp - ref.stamp
            if abs(offset) > self.config.tolerance_s:
                newest_age = now - buffer[-1].stamp
                if abs(newest_age) > max_age:
                    return None, f'camera {name} stale ({newest_age:.3f} s old)'
                return None, (f'camera {name} out of sync with the joint state ({offset:+.3f} s, '
                              f'tolerance {self.config.tolerance_s:.3f} s)')
            images[name] = best.value
        return Observation(stamp=ref.stamp, images=images, positions=ref.value), ''
