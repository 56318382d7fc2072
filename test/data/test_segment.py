"""Automatic event segmentation: each documented rule on a constructed trajectory, and the
defaults against the simulation expert's narrated event boundaries."""

import numpy as np
import pytest
from wallwm_train.data.event import Event
from wallwm_train.data.segment import boundaries
from wallwm_train.data.segment import merge
from wallwm_train.data.segment import segment

from wallwm_sim.env.expert import run_expert
from wallwm_sim.env.tabletop_env import TabletopEnv

FPS = 30
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def _ramp(q, joint, a, b, start, end):
    q[a:b, joint] = np.linspace(start, end, b - a)
    q[b:, joint] = end


def test_pause_cuts_at_its_middle_and_captions_follow_the_motion():
    q = np.zeros((120, 6))
    _ramp(q, 0, 0, 45, 0.0, 1.0)      # reach, rest from 45 to 75, lift
    _ramp(q, 1, 75, 120, 0.0, -0.8)
    events = segment(q, FPS, 'pick the cube', joint_names=JOINTS)
    assert [e.start for e in events[1:]] == pytest.approx([60], abs=1)
    assert events[0].start == 0 and events[-1].end == 120
    assert all(e.source == 'auto' for e in events)
    assert events[0].caption == 'move the arm (shoulder pan +) to pick the cube'
    assert events[1].caption == 'move the arm (shoulder lift -) to pick the cube'


def test_speed_minimum_between_two_motions_is_a_boundary():
    t = np.arange(90) / FPS
    q = np.zeros((90, 6))
    q[:, 0] = t - np.sin(2 * np.pi * t / 1.5) * 1.5 / (2 * np.pi)  # speed 1-cos: zero at 1.5 s
    q[:, 1] = 0.3 * t
    assert boundaries(q, FPS) == pytest.approx([45], abs=2)


def test_gripper_onset_while_the_arm_moves_is_a_boundary():
    q = np.zeros((90, 6))
    q[:, 0] = np.linspace(0, 1.5, 90)   # steady motion: no pause, no minimum
    q[:, 5] = 1.0
    _ramp(q, 5, 50, 65, 1.0, 0.0)
    assert boundaries(q, FPS) == pytest.approx([50], abs=1)
    assert segment(q, FPS)[1].caption == 'close the gripper'


def test_imported_captions_win():
    q = np.zeros((60, 6))
    q[:, 0] = np.linspace(0, 1, 60)
    auto = segment(q, 30)
    imported = [Event(10, 30, 'wave', source='sidecar')]
    merged = merge(imported, [*auto, Event(30, 60, 'other', source='auto')])
    assert imported[0] in merged
    assert all(e.end <= 10 or e.start >= 30 for e in merged if e.source == 'auto')


def test_defaults_find_the_sim_experts_narrated_boundaries():
    """The expert narrates every family's events; 0.3 s is the tolerance (9 frames at 30 Hz)."""
    found = true = predicted = 0
    with TabletopEnv(render=False) as env:
        for family in ('pick_place', 'stack', 'bin_ordered', 'push'):
            for seed in (11, 12, 13):
                states, _, _, events, success = run_expert(env, seed, family, render=False)
                assert success
                truth = [e.start for e in events[1:]]
                cuts = boundaries(states, FPS)
                found += sum(any(abs(c - b) <= 9 for c in cuts) for b in truth)
                true += len(truth)
                predicted += len(cuts)
    recall, precision = found / true, found / predicted
    print(f'segmentation vs expert: recall {recall:.2f}, precision {precision:.2f}')
    assert recall >= 0.9 and precision >= 0.65
