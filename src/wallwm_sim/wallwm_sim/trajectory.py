"""Joint trajectory following with ros2_control's semantics, without ROS (numpy only).

A trajectory is a start time plus waypoints at increasing `time_from_start`. Positions are linearly
interpolated, from the command in force when the trajectory starts to the first waypoint, between
waypoints, and held after the last one. A new trajectory replaces the rest of the previous one
from its own start time on. Joints a trajectory does not name keep their current command.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    start_time: float          # seconds, on the simulation clock
    joint_index: np.ndarray    # (M,) indices into the follower's joint order
    times: np.ndarray          # (P,) time_from_start [s], strictly increasing, >= 0
    positions: np.ndarray      # (P, M) [rad]


def validate(joint_names: list[str], known: list[str], times, positions) -> str | None:
    """A reason to reject the trajectory, or None when it is well formed."""
    if not joint_names:
        return 'no joint names'
    unknown = [n for n in joint_names if n not in known]
    if unknown:
        return f'unknown joints {unknown}; this robot has {known}'
    if len(set(joint_names)) != len(joint_names):
        return f'duplicate joint names {joint_names}'
    if len(times) == 0:
        return 'no points'
    for i, row in enumerate(positions):
        if len(row) != len(joint_names):
            return f'point {i} has {len(row)} positions for {len(joint_names)} joints'
    positions = np.asarray(positions, dtype=float)
    if not np.all(np.isfinite(positions)):
        return 'positions contain NaN or inf'
    times = np.asarray(times, dtype=float)
    if not np.all(np.isfinite(times)) or times[0] < 0 or np.any(np.diff(times) <= 0):
        return f'time_from_start must be finite, >= 0 and strictly increasing, got {times.tolist()}'
    return None


class TrajectoryFollower:
    def __init__(self, joint_names: list[str], initial: np.ndarray):
        self.joint_names = list(joint_names)
        self._command = np.asarray(initial, dtype=float).copy()
        self._pending: list[tuple[Trajectory, np.ndarray | None]] = []  # (traj, command at start)

    def hold(self, positions: np.ndarray) -> None:
        """Drop every trajectory and hold `positions`."""
        self._pending.clear()
        self._command = np.asarray(positions, dtype=float).copy()

    def add(self, trajectory: Trajectory) -> None:
        # Trajectories starting later than this one are superseded too (ros2_control replaces
        # everything from the new start time on).
        self._pending = [p for p in self._pending if p[0].start_time < trajectory.start_time]
        self._pending.append((trajectory, None))

    def command(self, now: float) -> np.ndarray:
        """Joint command at simulation time `now` (call with non-decreasing times)."""
        active = None
        for i, (traj, start_cmd) in enumerate(self._pending):
            if traj.start_time <= now:
                if start_cmd is None:  # the command in force when it took over
                    self._pending[i] = (traj, self._command.copy())
                active = i
        if active is None:
            return self._command.copy()
        self._pending = self._pending[active:]  # older ones are fully replaced
        traj, start_cmd = self._pending[0]
        t = now - traj.start_time
        times = np.concatenate([[0.0], traj.times]) if traj.times[0] > 0 else traj.times
        start = start_cmd[traj.joint_index][None]
        points = np.concatenate([start, traj.positions]) if traj.times[0] > 0 else traj.positions
        command = self._command.copy()
        for j, idx in enumerate(traj.joint_index):
            command[idx] = np.interp(t, times, points[:, j])
        self._command = command
        return command.copy()
