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
    start_time: float  # seconds, on the simulation clock
    joint_index: np.ndarray  # (M,) indices into the follower's joint order
    times: np.ndarray  # (P,) time_from_start [s], strictly increasing, >= 0
    positions: np.ndarray  # (P, M) [rad]


def validate(
    joint_names: list[str], known: list[str], times, positions, velocities=()
) -> str | None:
    """A reason to reject the trajectory, or None when it is well formed.

    `velocities` (one list per point, each empty or one per joint) are only checked, as
    ros2_control does; the follower interpolates positions linearly.
    """
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
    for i, row in enumerate(velocities):
        if len(row) not in (0, len(joint_names)):
            return f'point {i} has {len(row)} velocities for {len(joint_names)} joints'
        if not np.all(np.isfinite(np.asarray(row, dtype=float))):
            return f'point {i} velocities contain NaN or inf'
    positions = np.asarray(positions, dtype=float)
    if not np.all(np.isfinite(positions)):
        return 'positions contain NaN or inf'
    times = np.asarray(times, dtype=float)
    if not np.all(np.isfinite(times)) or times[0] < 0 or np.any(np.diff(times) <= 0):
        return (
            f'time_from_start must be finite, >= 0 and strictly increasing, got {times.tolist()}'
        )
    return None


class TrajectoryFollower:
    def __init__(self, joint_names: list[str], initial: np.ndarray):
        self.joint_names = list(joint_names)
        self._command = np.asarray(initial, dtype=float).copy()  # in force when nothing runs
        self._active: tuple[Trajectory, np.ndarray] | None = None  # (traj, command at its start)
        self._queued: list[Trajectory] = []  # not started yet

    def hold(self, positions: np.ndarray) -> None:
        """Drop every trajectory and hold `positions`."""
        self._active, self._queued = None, []
        self._command = np.asarray(positions, dtype=float).copy()

    def add(self, trajectory: Trajectory) -> None:
        # Queued trajectories starting at or after this one are superseded (ros2_control replaces
        # everything from the new start time on).
        self._queued = [q for q in self._queued if q.start_time < trajectory.start_time]
        self._queued.append(trajectory)

    def command(self, now: float) -> np.ndarray:
        """Joint command at simulation time `now` (call with non-decreasing times)."""
        while self._queued and self._queued[0].start_time <= now:
            nxt = self._queued.pop(0)
            # The new trajectory starts from what was commanded at its start time.
            self._active = (nxt, self._evaluate(nxt.start_time))
        self._command = self._evaluate(now)
        return self._command.copy()

    def _evaluate(self, t_abs: float) -> np.ndarray:
        if self._active is None:
            return self._command.copy()
        traj, start_cmd = self._active
        t = t_abs - traj.start_time
        if traj.times[0] > 0:  # from the command at the start to the first waypoint
            times = np.concatenate([[0.0], traj.times])
            points = np.concatenate([start_cmd[traj.joint_index][None], traj.positions])
        else:
            times, points = traj.times, traj.positions
        command = start_cmd.copy()
        for j, idx in enumerate(traj.joint_index):
            command[idx] = np.interp(t, times, points[:, j])
        return command
