"""Chunk execution: a timeline of planned actions indexed by control step, with blending.

A plan computed from the observation at step k holds the actions for steps k, k+1, ...; when it
arrives (asynchronously) at step k + d, its first d rows are already in the past and are dropped.
Its first rows are blended into the rows still queued from the previous plan, so the commanded
trajectory stays continuous across replans. The queue is replanned every `execute_steps` (H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wallwm_policy.core.pipeline import Plan


@dataclass(frozen=True)
class QueuedStep:
    action: np.ndarray   # (J,) rad
    boundary: float      # probability that the event ends at this step
    progress: float      # progress through the event at this step


class ActionQueue:
    """Planned actions from control step `start` onward."""

    def __init__(self, blend_steps: int):
        if blend_steps < 0:
            raise ValueError(f'blend_steps must be >= 0, got {blend_steps}')
        self.blend_steps = blend_steps
        self.clear()

    def clear(self) -> None:
        self._start = 0
        self._actions = np.zeros((0, 0))   # (K, J)
        self._boundary = np.zeros(0)       # (K,)
        self._progress = np.zeros(0)       # (K,)

    def remaining(self, step: int) -> int:
        """Rows left for steps >= `step`."""
        return max(0, self._start + len(self._actions) - step)

    def insert(self, plan: Plan, plan_step: int, now_step: int) -> int:
        """Queue `plan` (row 0 is for `plan_step`) from `now_step` on; returns rows dropped.

        With nothing queued the plan starts at `now_step` as is (the arm held still meanwhile).
        """
        old_left = self.remaining(now_step)
        skip = max(0, now_step - plan_step) if old_left else 0
        new_actions = plan.actions[skip:]
        if len(new_actions) == 0:
            return skip
        new_actions = new_actions.copy()
        if old_left and self.blend_steps:
            offset = now_step - self._start
            old = self._actions[offset:offset + old_left]
            n = min(self.blend_steps, len(old), len(new_actions))
            weight = (np.arange(1, n + 1) / (n + 1))[:, np.newaxis]    # (n, 1), ramps to new
            new_actions[:n] = (1.0 - weight) * old[:n] + weight * new_actions[:n]
        self._start = now_step
        self._actions = new_actions
        self._boundary = plan.boundary[skip:].copy()
        self._progress = plan.progress[skip:].copy()
        return skip

    def take(self, step: int) -> QueuedStep | None:
        """The planned row for `step`, or None if the queue has run dry."""
        i = step - self._start
        if i < 0 or i >= len(self._actions):
            return None
        return QueuedStep(self._actions[i], float(self._boundary[i]), float(self._progress[i]))

    def boundary_within(self, step: int, steps: int, threshold: float) -> bool:
        """Whether a queued row for `step` .. `step + steps - 1` ends the event."""
        i = max(0, step - self._start)
        return bool(np.any(self._boundary[i:i + steps] >= threshold))

    def disarm_boundary(self) -> None:
        """Rows queued for a finished event keep moving the arm but cannot end the next one."""
        self._boundary = np.zeros_like(self._boundary)

    def rows(self, step: int) -> np.ndarray:
        """(remaining, J) rows from `step` on (for inspection and tests)."""
        i = max(0, step - self._start)
        return self._actions[i:]
