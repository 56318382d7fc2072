"""Trajectory following with ros2_control semantics (interpolation, replacement, validation)."""

import numpy as np

from wallwm_sim.trajectory import Trajectory
from wallwm_sim.trajectory import TrajectoryFollower
from wallwm_sim.trajectory import validate

JOINTS = ['a', 'b', 'c']


def test_interpolates_from_current_command_and_holds_the_last_point():
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.add(
        Trajectory(
            1.0, np.array([0, 2]), np.array([1.0, 2.0]), np.array([[1.0, -1.0], [3.0, -3.0]])
        )
    )
    np.testing.assert_allclose(follower.command(0.5), [0, 0, 0])  # not started yet
    np.testing.assert_allclose(follower.command(1.5), [0.5, 0, -0.5])
    np.testing.assert_allclose(follower.command(2.5), [2.0, 0, -2.0])
    np.testing.assert_allclose(follower.command(9.0), [3.0, 0, -3.0])  # unnamed joint kept


def test_new_trajectory_replaces_the_rest_of_the_old_from_its_start_time():
    follower = TrajectoryFollower(JOINTS, np.zeros(3))
    follower.add(Trajectory(0.0, np.arange(3), np.array([2.0]), np.full((1, 3), 2.0)))
    follower.command(1.0)  # halfway: (1, 1, 1)
    follower.add(Trajectory(1.5, np.arange(3), np.array([1.0]), np.full((1, 3), -1.0)))
    np.testing.assert_allclose(follower.command(1.25), [1.25] * 3)  # old one still runs
    np.testing.assert_allclose(follower.command(1.5), [1.5] * 3)  # new one takes over here
    np.testing.assert_allclose(follower.command(2.0), [0.25] * 3)
    np.testing.assert_allclose(follower.command(3.0), [-1.0] * 3)


def test_malformed_trajectories_are_rejected_with_a_reason():
    ok = validate(['a', 'b'], JOINTS, [0.1, 0.2], [[0, 0], [1, 1]])
    assert ok is None
    assert 'unknown joints' in validate(['a', 'x'], JOINTS, [0.1], [[0, 0]])
    assert 'duplicate' in validate(['a', 'a'], JOINTS, [0.1], [[0, 0]])
    assert 'NaN' in validate(['a'], JOINTS, [0.1], [[float('nan')]])
    assert 'positions for' in validate(['a', 'b'], JOINTS, [0.1], [[0.0]])
    assert 'increasing' in validate(['a'], JOINTS, [0.2, 0.1], [[0.0], [1.0]])
    assert 'no points' in validate(['a'], JOINTS, [], [])
    assert 'velocities for' in validate(['a', 'b'], JOINTS, [0.1], [[0, 0]], [[0.0]])
    assert 'velocities contain NaN' in validate(['a'], JOINTS, [0.1], [[0]], [[float('inf')]])
    assert validate(['a'], JOINTS, [0.1, 0.2], [[0], [1]], [[], [0.5]]) is None
