"""The console scripts end to end on a LeRobot dataset: wallwm-train (cluster-balanced sampler),
--stop-at / --resume, wallwm-export."""

import csv

from wallwm_train.export import _manifest_module
from wallwm_train.export import main as export_main
from wallwm_train.testing import write_synthetic_dataset
from wallwm_train.train import main as train_main


def test_train_resume_export_on_a_lerobot_dataset(tmp_path):
    data = write_synthetic_dataset(tmp_path / 'data')
    run = tmp_path / 'run'
    common = [
        '--config',
        'tiny',
        '--data',
        str(data),
        '--out',
        str(run),
        '--threads',
        '1',
        '--set',
        'train.steps=6',
        'train.log_every=1',
        'train.checkpoint_every=3',
    ]
    assert train_main(common + ['--stop-at', '3']) == 0
    assert train_main(common + ['--resume']) == 0
    with open(run / 'metrics.csv', newline='') as f:
        steps = [int(r['step']) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (run / 'config.yaml').is_file() and (run / 'tensorboard').is_dir()
    assert export_main(['--checkpoint', str(run), '--out', str(tmp_path / 'bundle')]) == 0
    manifest = _manifest_module().load(tmp_path / 'bundle')
    assert manifest.control_rate_hz == 30.0
    assert set(manifest.modes) == {'event', 'unified', 'chunk'}


def test_resume_with_another_model_config_is_refused(tmp_path, capsys):
    data = write_synthetic_dataset(tmp_path / 'data', num_episodes=2)
    run = tmp_path / 'run'
    base = ['--config', 'tiny', '--data', str(data), '--out', str(run), '--threads', '1']
    assert train_main(base + ['--set', 'train.steps=2']) == 0
    assert train_main(base + ['--resume', '--set', 'model.dim=48']) == 2
    assert 'different model config' in capsys.readouterr().err


def test_store_events_follow_the_dataset_event_list(tmp_path):
    from wallwm_train.config import load_config
    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.samples import EpisodeStore

    ds = LeRobotDataset(write_synthetic_dataset(tmp_path / 'data', num_episodes=3))
    store = EpisodeStore.from_dataset(ds, load_config('tiny').model)
    assert [(r.episode, r.start, r.end, r.caption) for r in store.events] == [
        (ep, e.start, e.end, e.caption) for ep, e in ds.events
    ]
    assert store.fps == 30.0
