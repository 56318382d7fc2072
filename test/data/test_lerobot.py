"""Datasets in the LeRobot v3.0 layout: round trip, crash safety and validation."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from wallwm_train.data.event import Event
from wallwm_train.data.lerobot import LeRobotDataset
from wallwm_train.data.lerobot import LeRobotWriter
from wallwm_train.data.lerobot import validate

JOINTS = ['a', 'b', 'gripper']


def _episode(rng, length):
    state = rng.normal(size=(length, 3)).astype(np.float32)
    images = {'front': rng.integers(0, 255, (length, 8, 8, 3), dtype=np.uint8)}
    return state, state + 0.1, images


def _write(root, lengths=(5, 7)):
    rng = np.random.default_rng(0)
    episodes = []
    with LeRobotWriter(root, fps=10, joint_names=JOINTS, cameras={'front': (8, 8)}) as writer:
        for i, length in enumerate(lengths):
            state, action, images = _episode(rng, length)
            # The first episode's reach is a deliberate error of the expert (noise injection).
            events = [Event(0, 2, 'reach', imitate=i > 0), Event(2, length, f'grasp {i}')]
            writer.add_episode(f'task {i % 2}', state, action, images, events)
            episodes.append((state, action, images, events))
    return episodes


def test_round_trip_and_layout(tmp_path):
    root = tmp_path / 'ds'
    written = _write(root)
    ds = LeRobotDataset(root)
    assert (ds.num_episodes, ds.fps, ds.joint_names, ds.camera_names) == (2, 10, JOINTS, ['front'])
    for i, (state, action, images, events) in enumerate(written):
        ep = ds.episode(i)
        np.testing.assert_array_equal(ep.state, state)
        np.testing.assert_array_equal(ep.action, action)
        np.testing.assert_array_equal(ds.episode_actions(i), action)
        np.testing.assert_array_equal(ep.images['front'], images['front'])  # PNG is lossless
        assert ep.events == events and ep.task == f'task {i}'
    assert validate(root) == []
    info = json.loads((root / 'meta/info.json').read_text())
    assert info['codebase_version'] == 'v3.0' and info['total_frames'] == 12
    assert info['features']['observation.images.front']['names'] == ['height', 'width', 'channels']
    table = pq.read_table(root / 'data/chunk-000/file-000.parquet')
    assert set(table.column_names) == set(info['features'])  # exactly the features
    assert table['index'].to_pylist() == list(range(12))
    assert (root / 'meta/events.parquet').is_file() and not list(root.glob('.*partial*'))


def test_datasets_without_the_imitate_column_read_as_demonstrations(tmp_path):
    root = tmp_path / 'ds'
    _write(root)
    events = pq.read_table(root / 'meta/events.parquet')
    pq.write_table(events.drop_columns(['imitate']), root / 'meta/events.parquet')
    assert all(e.imitate for _, e in LeRobotDataset(root).events)
    with pytest.raises(ValueError, match='imitate'):
        Event(0, 2, 'reach', imitate='no')  # a sidecar's string would otherwise read as true


def test_a_failed_conversion_leaves_no_dataset(tmp_path):
    root = tmp_path / 'ds'
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match='ends at'):
        with LeRobotWriter(root, fps=10, joint_names=JOINTS, cameras={'front': (8, 8)}) as w:
            state, action, images = _episode(rng, 5)
            w.add_episode('t', state, action, images, [Event(0, 5, 'ok')])
            w.add_episode('t', state, action, images, [Event(0, 9, 'too long')])
    assert not root.exists() and not list(tmp_path.iterdir())


def test_validate_reports_each_problem_with_its_location(tmp_path):
    root = tmp_path / 'ds'
    _write(root)
    info = json.loads((root / 'meta/info.json').read_text())
    info['total_frames'] = 99
    (root / 'meta/info.json').write_text(json.dumps(info))
    (root / 'meta/stats.json').unlink()
    problems = validate(root)
    assert any('total_frames 99' in p for p in problems)
    assert any(p.startswith('meta/stats.json') for p in problems)
    assert validate(tmp_path / 'nothing') == [f'{tmp_path / "nothing"}: not a LeRobot dataset '
                                              '(no meta/info.json)']
