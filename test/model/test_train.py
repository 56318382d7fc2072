"""The training loop: exact resume after a kill, checkpoint errors."""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from wallwm_train import checkpoint
from wallwm_train.config import load_config
from wallwm_train.model.wallwm import WallWM
from wallwm_train.train import load_trained

STEPS = 24
CKPT = 8
SCRIPT = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    from wallwm_train.config import load_config
    from wallwm_train.testing import synthetic_episodes
    from wallwm_train.train import fit_in_memory
    cfg = load_config('tiny', ['train.steps={steps}', 'train.log_every=1',
                               'train.checkpoint_every={ckpt}'])
    fit_in_memory(cfg, synthetic_episodes(), run_dir=Path(sys.argv[1]),
                  resume=sys.argv[2] == 'resume')
""").format(steps=STEPS, ckpt=CKPT)


def _run(run_dir: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, '-c', SCRIPT, str(run_dir), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _losses(run_dir: Path) -> dict[int, str]:
    with open(run_dir / 'metrics.csv', newline='') as f:
        return {int(r['step']): r['loss'] for r in csv.DictReader(f)}


def test_resume_after_kill_gives_the_same_losses(tmp_path):
    straight = tmp_path / 'straight'
    proc = _run(straight, 'fresh')
    assert proc.wait(timeout=240) == 0, proc.stdout.read().decode()
    expected = _losses(straight)
    assert sorted(expected) == list(range(1, STEPS + 1))

    killed = tmp_path / 'killed'
    proc = _run(killed, 'fresh')
    deadline = time.time() + 240
    while not (killed / 'checkpoints' / 'latest').is_file():
        assert proc.poll() is None and time.time() < deadline, 'no checkpoint was written'
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.read_state(killed)['step'] < STEPS
    proc = _run(killed, 'resume')
    out = proc.communicate(timeout=240)[0].decode()
    assert proc.returncode == 0, out
    assert 'resumed from step' in out
    assert _losses(killed) == expected  # bit-identical (the CSV keeps repr of floats)


def test_missing_and_mismatched_checkpoints_give_clear_errors(tmp_path, episodes):
    with pytest.raises(checkpoint.CheckpointError, match='not a wallwm checkpoint'):
        load_trained(tmp_path)
    from wallwm_train.train import fit_in_memory

    cfg = load_config('tiny', ['train.steps=2', 'train.checkpoint_every=2'])
    fit_in_memory(cfg, episodes, run_dir=tmp_path / 'run')
    model, loaded_cfg, norm = load_trained(tmp_path / 'run')
    assert loaded_cfg.model == cfg.model and model.modes == cfg.train.modes
    wider = load_config('tiny', ['model.dim=48'])
    with pytest.raises(checkpoint.CheckpointError, match='shape mismatches'):
        checkpoint.load_model(tmp_path / 'run', WallWM(wider.model, wider.train.modes))
    ckpt = checkpoint.resolve(tmp_path / 'run')
    (ckpt / checkpoint.STATE_FILE).write_text('{not json')
    with pytest.raises(checkpoint.CheckpointError, match='corrupt'):
        checkpoint.read_state(ckpt)


@pytest.mark.skipif(not __import__('torch').cuda.is_available(), reason='needs a CUDA GPU')
def test_trains_on_gpu_with_bf16_autocast(episodes):
    import torch
    from wallwm_train.samples import EpisodeStore
    from wallwm_train.samples import RandomEventSampler
    from wallwm_train.train import Distributed
    from wallwm_train.train import train

    cfg = load_config('tiny', ['train.steps=30', 'train.log_every=1'])
    store = EpisodeStore.from_episodes(episodes, cfg.model, 30.0)
    model, _, history = train(
        cfg, store, RandomEventSampler(len(store.events)), env=Distributed('cuda'), progress=False
    )
    assert next(model.parameters()).device.type == 'cuda'
    assert all(torch.isfinite(torch.tensor(h['loss'])) for h in history)
    assert history[-1]['loss'] < history[0]['loss']
