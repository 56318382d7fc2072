"""Safety on the way out: every command is clamped to joint limits and rate-limited in velocity.

Limits come from the robot profile (ROS parameters), by joint name; the bundle's joints must all
have limits. A hold target passes through the same clamp, so nothing outside limits is ever sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointLimits:
    """Position and velocity limits in bundle joint order."""

    lower: np.ndarray         # (J,) rad
    upper: np.ndarray         # (J,) rad
    max_velocity: np.ndarray  # (J,) rad/s

    @classmethod
    def from_profile(cls, joint_names: Sequence[str], names: Sequence[str],
                     lower: Sequence[float], upper: Sequence[float],
                     max_velocity: Sequence[float]) -> JointLimits:
        """Pick the bundle's joints out of a profile given as parallel lists."""
        if not (len(names) == len(lower) == len(upper) == len(max_velocity)):
            raise ValueError(
                f'joint limits: names ({len(names)}), lower ({len(lower)}), upper ({len(upper)}) '
                f'and max_velocity ({len(max_velocity)}) must have the same length')
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in joint_names if n not in index]
        if missing:
            raise ValueError(f'joint limits: no limits for bundle joints {missing}')
        pick = [index[n] for n in joint_names]
        lo = np.asarray(lower, dtype=np.float64)[pick]
        hi = np.asarray(upper, dtype=np.float64)[pick]
        vel = np.asarray(max_velocity, dtype=np.float64)[pick]
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ValueError('joint limits: need finite lower < upper for every joint')
        if not (np.all(np.isfinite(vel)) and np.all(vel > 0)):
            raise ValueError('joint limits: max_velocity must be finite and > 0')
        return cls(lo, hi, vel)


class CommandFilter:
    """Clamps targets to limits and moves at most max_velocity * dt per step from the last one."""

    def __init__(self, limits: JointLimits, step_period: float):
        self.limits = limits
        self._max_step = limits.max_velocity * step_period  # (J,) rad per step
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    @property
    def last(self) -> np.ndarray | None:
        return None if self._last is None else self._last.copy()

    def clamp(self, position: np.ndarray) -> np.ndarray:
        return np.clip(position, self.limits.lower, self.limits.upper)

    def apply(self, target: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """A model target -> the command to send. `measured` anchors the first step."""
        if not np.all(np.isfinite(target)):
            raise ValueError('non-finite target')
        reference = self._last if self._last is not None else self.clamp(measured)
        step = np.clip(self.clamp(target) - reference, -self._max_step, self._max_step)
        command = self.clamp(reference + step)
        self._last = command
        return command.copy()

    def hold(self, measured: np.ndarray | None) -> np.ndarray | None:
        """Where to stop: the measured position if known, else the last command (clamped)."""
        if measured is not None and np.all(np.isfinite(measured)):
            target = self.clamp(np.asarray(measured, dtype=np.float64))
        elif self._last is not None:
            target = self._last
        else:
            return None
        self._last = target
        return target.copy()
