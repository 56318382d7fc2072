"""Two-rank DDP on CPU with gloo: ranks see different batches, parameters stay equal, and an
interrupted 2-rank run resumes exactly."""

import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(
    rank: int, port: int, out: str, run_dir: str | None, resume: bool, stop_at: int | None
) -> None:
    import os
    from pathlib import Path

    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        WORLD_SIZE='2',
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    from wallwm_train.config import load_config
    from wallwm_train.samples import EpisodeStore
    from wallwm_train.samples import RandomEventSampler
    from wallwm_train.testing import synthetic_episodes
    from wallwm_train.train import Distributed
    from wallwm_train.train import train

    cfg = load_config('tiny', ['train.steps=4', 'train.log_every=1', 'train.checkpoint_every=100'])
    store = EpisodeStore.from_episodes(synthetic_episodes(), cfg.model, 30.0)
    env = Distributed('cpu')
    sampler = RandomEventSampler(len(store.events), seed=0, rank=rank, world_size=2)
    model, _, history = train(
        cfg,
        store,
        sampler,
        Path(run_dir) if run_dir else None,
        resume,
        env=env,
        progress=False,
        stop_at=stop_at,
    )
    torch.save(
        {
            'params': {k: v.detach().clone() for k, v in model.state_dict().items()},
            'history': history,
        },
        f'{out}.rank{rank}.pt',
    )
    env.close()


def _spawn(out, run_dir=None, resume=False, stop_at=None):
    mp.start_processes(
        _worker,
        args=(_free_port(), str(out), run_dir and str(run_dir), resume, stop_at),
        nprocs=2,
        join=True,
        start_method='spawn',
    )
    return [torch.load(f'{out}.rank{r}.pt', weights_only=True) for r in (0, 1)]


def test_two_ranks_stay_in_sync_and_resume_exactly(tmp_path):
    r0, r1 = _spawn(tmp_path / 'straight')
    from wallwm_train.config import load_config
    from wallwm_train.model.wallwm import WallWM

    torch.manual_seed(0)
    init = WallWM(load_config('tiny').model, ('event', 'unified', 'chunk')).state_dict()
    moved = 0
    for name, value in r0['params'].items():
        assert torch.equal(value, r1['params'][name]), name
        moved += int(not torch.equal(value, init[name]))
    assert moved > 10  # training did change the weights
    # Logged losses are all-reduced means, identical on both ranks.
    assert [h['loss'] for h in r0['history']] == [h['loss'] for h in r1['history']]

    _spawn(tmp_path / 'first', tmp_path / 'run', stop_at=2)
    c0, _ = _spawn(tmp_path / 'second', tmp_path / 'run', resume=True)
    assert [h['step'] for h in c0['history']] == [3, 4]
    assert [h['loss'] for h in c0['history']] == [h['loss'] for h in r0['history']][2:]
    for name, value in r0['params'].items():
        assert torch.equal(value, c0['params'][name]), name
