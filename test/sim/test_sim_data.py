"""The parallel sim data generator: the rosbag2 + events sidecar and the dataset hold the expert's
episodes, in the same order whatever the number of workers."""

import json

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore
from wallwm_train.sim_data import GenerateConfig
from wallwm_train.sim_data import generate
from wallwm_train.sim_data import main

from wallwm_sim.env.expert import run_expert
from wallwm_sim.env.scene import JOINT_NAMES
from wallwm_sim.env.scene import SceneConfig
from wallwm_sim.env.tabletop_env import TabletopEnv

SIZE = 32
# Two short push episodes (seeds 0 and 1) on two worker processes.
CONFIG = GenerateConfig(episodes=2, families=('push',), image_size=SIZE, workers=2)


@pytest.fixture(scope='module')
def reference():
    """The same episodes rolled out in this process."""
    with TabletopEnv(SceneConfig(image_height=SIZE, image_width=SIZE)) as env:
        episodes = []
        for seed in (0, 1):
            states, actions, images, events, success = run_expert(env, seed, 'push')
            assert success
            episodes.append((env.instruction, states, actions, images, events))
    return episodes


def _read_bag(path):
    topics = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        for connection, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            topics.setdefault(connection.topic, []).append((stamp * 1e-9, msg))
    return topics


def test_bag_and_sidecar_hold_the_expert_episodes(tmp_path, reference):
    bag = tmp_path / 'sim_bag'
    summary = generate(CONFIG, out=None, bag=bag, progress=False)
    assert summary['episodes'] == 2
    topics = _read_bag(bag)
    sidecar = json.loads((tmp_path / 'sim_bag.events.json').read_text())
    assert len(sidecar['episodes']) == 2

    commands = topics['/joint_trajectory_controller/joint_trajectory']
    joints = topics['/joint_states']
    front = topics['/camera/front/image_raw']
    total = sum(len(ep[2]) for ep in reference)
    assert len(commands) == len(joints) == len(front) == len(topics['/clock']) == total
    offset = 0
    for (task, states, actions, images, events), meta in zip(
        reference, sidecar['episodes'], strict=True
    ):
        assert meta['task'] == task
        n = len(actions)
        span = slice(offset, offset + n)
        # Each step's command is the expert's action, at the time of that step's observation.
        np.testing.assert_allclose(
            [m.points[0].positions for _, m in commands[span]], actions, atol=1e-6
        )
        np.testing.assert_allclose([m.position for _, m in joints[span]], states, atol=1e-6)
        assert all(list(m.joint_names) == list(JOINT_NAMES) for _, m in commands[span])
        assert [t for t, _ in commands[span]] == pytest.approx([t for t, _ in joints[span]])
        image = front[offset + n // 2][1]
        assert (image.height, image.width, image.encoding) == (SIZE, SIZE, 'rgb8')
        np.testing.assert_array_equal(image.data.reshape(SIZE, SIZE, 3), images['front'][n // 2])
        # Events in the sidecar are the narrated ones, on the bag's clock.
        assert meta['start_time'] == pytest.approx(joints[offset][0])
        assert meta['end_time'] == pytest.approx(meta['start_time'] + n / 30)
        assert [e['caption'] for e in meta['events']] == [e.caption for e in events]
        for e, narrated in zip(meta['events'], events, strict=True):
            assert e['start_time'] == pytest.approx(meta['start_time'] + narrated.start / 30)
            assert e['end_time'] == pytest.approx(meta['start_time'] + narrated.end / 30)
        offset += n
    assert sidecar['episodes'][1]['start_time'] > sidecar['episodes'][0]['end_time']


def _assert_holds_reference(ds, reference, source):
    for i, (task, states, actions, images, events) in enumerate(reference):
        ep = ds.episode(i)
        assert ep.task == task
        np.testing.assert_allclose(ep.state, states, atol=1e-5)
        np.testing.assert_allclose(ep.action, actions, atol=1e-5)
        for cam in images:
            np.testing.assert_array_equal(ep.images[cam], images[cam])
        assert [(e.start, e.end, e.caption, e.source) for e in ep.events] == [
            (e.start, e.end, e.caption, source) for e in events
        ]


def test_dataset_holds_the_expert_episodes(tmp_path, reference):
    lerobot = pytest.importorskip('wallwm_train.data.lerobot')
    root = tmp_path / 'dataset'
    generate(
        GenerateConfig(episodes=2, families=('push',), image_size=SIZE, workers=1),
        root,
        progress=False,
    )
    ds = lerobot.LeRobotDataset(root)
    assert ds.num_episodes == 2 and ds.fps == 30
    assert list(ds.joint_names) == list(JOINT_NAMES)
    _assert_holds_reference(ds, reference, 'expert')


def test_generated_bag_converts_back_into_the_expert_episodes(tmp_path, reference):
    """sim -> rosbag2 -> `wallwm-data convert` gives the data a direct write gives: the path a
    user's own recordings take."""
    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.lerobot import validate
    from wallwm_train.data.rosbag import Profile
    from wallwm_train.data.rosbag import builtin_profile
    from wallwm_train.data.rosbag import convert

    bag = tmp_path / 'sim_bag'
    generate(CONFIG, out=None, bag=bag, progress=False)
    report = convert(bag, tmp_path / 'converted', Profile.load(builtin_profile('so101_sim')))
    assert validate(tmp_path / 'converted') == []
    ds = LeRobotDataset(tmp_path / 'converted')
    assert report.episodes == [len(ref[1]) for ref in reference], report.text()
    _assert_holds_reference(ds, reference, 'sidecar')


def test_noise_injected_reaches_stay_marked_in_the_dataset_and_the_bag(tmp_path):
    """The events the expert got wrong on purpose keep imitate=False on both data paths, so
    training never learns their actions."""
    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.rosbag import Profile
    from wallwm_train.data.rosbag import builtin_profile
    from wallwm_train.data.rosbag import convert

    config = GenerateConfig(
        episodes=1, families=('pick_place',), image_size=SIZE, workers=1, approach_noise=1.0
    )
    generate(config, tmp_path / 'dataset', tmp_path / 'bag', progress=False)
    convert(tmp_path / 'bag', tmp_path / 'converted', Profile.load(builtin_profile('so101_sim')))
    for root in ('dataset', 'converted'):
        flags = [e.imitate for _, e in LeRobotDataset(tmp_path / root).events]
        assert flags == [False, True, True, True, True], root
    with pytest.raises(ValueError, match='approach_noise'):
        GenerateConfig(episodes=1, approach_noise=-0.1)


def test_the_cli_generates_gap_centred_grasps(tmp_path):
    """`--gap-centred-grasp` reaches the expert: the dataset holds its episode, not the plain."""
    from wallwm_train.data.lerobot import LeRobotDataset

    root = tmp_path / 'dataset'
    args = ['--out', str(root), '--episodes', '1', '--families', 'pick_place']
    main([*args, '--image-size', str(SIZE), '--workers', '1', '--gap-centred-grasp'])
    with TabletopEnv(SceneConfig(image_height=SIZE, image_width=SIZE)) as env:
        centred = run_expert(env, 0, 'pick_place', render=False, gap_centred_grasp=True)[1]
        plain = run_expert(env, 0, 'pick_place', render=False)[1]
    action = LeRobotDataset(root).episode(0).action
    np.testing.assert_allclose(action, centred, atol=1e-5)
    assert np.abs(action - plain).max() > 0.05


def test_bad_requests_fail_clearly(tmp_path, capsys):
    with pytest.raises(ValueError, match='unknown task families'):
        GenerateConfig(episodes=1, families=('juggle',))
    with pytest.raises(ValueError, match='split'):
        GenerateConfig(episodes=1, split='test')
    (tmp_path / 'taken').mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(['--bag', str(tmp_path / 'taken'), '--episodes', '1'])
    assert exit_info.value.code == 2
    assert 'exists' in capsys.readouterr().err
