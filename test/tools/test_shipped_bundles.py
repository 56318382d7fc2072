"""The bundles shipped in models/ load, pass their checksums and drive the simulated arm."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from wallwm_policy.core.bundle import BundleError
from wallwm_policy.core.bundle import load_bundle
from wallwm_policy.core.controller import STATE_DONE
from wallwm_policy.core.controller import ControlConfig
from wallwm_policy.core.controller import PolicyController
from wallwm_policy.core.pipeline import Observation
from wallwm_policy.core.safety import JointLimits
from wallwm_policy.core.sessions import SessionConfig
from wallwm_sim.env.expert import run_expert
from wallwm_sim.env.scene import JOINT_NAMES
from wallwm_sim.env.tabletop_env import TabletopEnv
from wallwm_tools import evaluate

MODELS = Path(__file__).resolve().parents[2] / 'models'
STEPS = 45  # 1.5 s of control at 30 Hz


@pytest.mark.parametrize(
    'name, mode', [('default', 'event'), ('default', 'unified'), ('chunk_baseline', 'chunk')]
)
def test_shipped_bundle_drives_the_sim(name, mode):
    bundle = load_bundle(MODELS / name, SessionConfig(intra_op_threads=1))
    assert list(bundle.manifest.joint_names) == list(JOINT_NAMES)
    seed = 100_000
    with TabletopEnv(render=False) as probe:
        _, _, _, events, _ = run_expert(probe, seed, 'pick_place', 'heldout', render=False)
    with TabletopEnv() as env:
        obs = env.reset(seed, 'pick_place', 'heldout')
        low, high = env.joint_range[:, 0], env.joint_range[:, 1]
        limits = JointLimits.from_profile(JOINT_NAMES, JOINT_NAMES, low, high, [3.0] * 6)
        controller = PolicyController(bundle, limits, ControlConfig(seed=0), mode=mode)
        if mode == 'event':
            controller.start_event(events[0].caption, env.instruction, 0.0, 0.0)
        else:
            controller.start_instruction(env.instruction, 8, 0.0, 0.0)
        start, commanded, ticks = obs.state.copy(), 0, 0
        for step in range(STEPS):
            now = step / 30.0
            result = controller.tick(Observation(now, obs.images, obs.state), '', obs.state, now)
            controller.wait_for_inference(10.0)
            if result.status.state == STATE_DONE:  # event mode: the boundary ended the event
                break
            ticks += 1
            command = obs.state if result.command is None else result.command  # None: no plan yet
            commanded += result.command is not None
            assert np.all(command >= low - 1e-6) and np.all(command <= high + 1e-6)
            obs = env.step(command)
        controller.close()
    assert ticks >= 15  # reaching above the object takes longer than half a second
    assert commanded >= ticks - 2  # the first plan arrives within a tick or two
    # the first event (reach above the object) moves the arm well away from home
    assert np.abs(obs.state[:5] - start[:5]).max() > 0.1


def test_shipped_default_picks_and_places_at_the_node_defaults():
    """A held-out layout where replanning every 8 steps failed (README, "Replanning"): the grasp's
    closing wait and the release's wait before the lift restarted at every replan, and the open
    jaws stayed at the cube."""
    defaults = ControlConfig()
    result, ends = evaluate.run_episode(
        str(MODELS / 'default'), 'pick_place', 'event', 100_017, 'heldout',
        defaults.noise_scale, defaults.execute_steps, defaults.approach_steps,
    )
    # (the episode stops once the cube rests released on its pad, often before the release's end)
    assert [e.caption.split()[0] for e in ends][:4] == ['reach', 'grasp', 'lift', 'move']
    assert ends[1].reason == 'boundary'  # the grasp ends when its jaws have closed
    assert result.success


def test_a_corrupted_shipped_bundle_is_refused(tmp_path):
    copy = tmp_path / 'default'
    shutil.copytree(MODELS / 'default', copy)
    graph = next(copy.glob('*.onnx'))
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=graph.name):
        load_bundle(copy)
