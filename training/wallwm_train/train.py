"""`wallwm-train`: train WALL-WM on a LeRobot dataset with events; single process or torchrun DDP.

    wallwm-train --config default --data data/sim --out runs/default
    torchrun --nproc-per-node 2 -m wallwm_train.train --config tiny --data ... --out ...
    wallwm-train ... --resume            # continue from runs/.../checkpoints/latest

Exact resume: the model, optimiser state, the batch generator's RNG and the sampler's state are
checkpointed together, and the learning rate is a pure function of the step, so a run killed
and resumed logs exactly the losses of an uninterrupted one. DDP uses gloo on CPU and nccl on GPU;
bf16 autocast is used on GPU only.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from wallwm_train import checkpoint
from wallwm_train.config import Config
from wallwm_train.config import load_config
from wallwm_train.model.wallwm import WallWM
from wallwm_train.optim import build_optimizers
from wallwm_train.optim import set_lr
from wallwm_train.samples import EpisodeStore
from wallwm_train.samples import NormStats
from wallwm_train.samples import RandomEventSampler
from wallwm_train.samples import SampleBuilder
from wallwm_train.samples import trim_text_padding

LOG_FILE = 'metrics.csv'


def print0(*args, rank: int = 0) -> None:
    if rank == 0:
        print(*args, flush=True)


class Distributed:
    """Process group from torchrun's environment (or a single process)."""

    def __init__(self, device: str = 'auto'):
        self.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cuda':
            torch.cuda.set_device(local_rank)
            self.device = torch.device('cuda', local_rank)
        else:
            self.device = torch.device('cpu')
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group('nccl' if device == 'cuda' else 'gloo')

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def build_model(cfg: Config, builder: SampleBuilder | None, seed: int) -> WallWM:
    torch.manual_seed(seed)
    model = WallWM(cfg.model, cfg.train.modes)
    if builder is not None and model.caption is not None:
        model.caption.set_vocabulary(builder.caption_vocabulary())
    return model


class MetricsLog:
    """CSV (+ TensorBoard) on rank 0; on resume, rows after the checkpoint are dropped."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOG_FILE
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline='') as f:
                self.rows = [r for r in csv.DictReader(f) if int(r['step']) <= resume_step]
        self.fields: list[str] | None = list(self.rows[0]) if self.rows else None
        self._rewrite()
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run_dir / 'tensorboard'), purge_step=(resume_step or 0) + 1)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix('.tmp')
        with open(tmp, 'w', newline='') as f:
            if self.fields:
                writer = csv.DictWriter(f, self.fields)
                writer.writeheader()
                writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {'step': str(step), **{k: repr(float(v)) for k, v in values.items()}}
        if self.fields is None:
            self.fields = list(row)
            self._rewrite()
        with open(self.path, 'a', newline='') as f:
            csv.DictWriter(f, self.fields).writerow(row)
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self.tb.close()


def train(
    cfg: Config,
    store: EpisodeStore,
    sampler,
    run_dir: Path | None = None,
    resume: bool = False,
    env: Distributed | None = None,
    norm: NormStats | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> tuple[WallWM, NormStats, list[dict[str, float]]]:
    """The training loop. Returns the (unwrapped) model, normalisation and logged metrics.

    `stop_at`: leave after that step (with a checkpoint) as if interrupted; the schedule still
    runs to `cfg.train.steps`, so a later `resume` continues exactly.
    """
    env = env or Distributed('cpu')
    tc = cfg.train
    norm = norm or store.norm_stats()
    builder = SampleBuilder(store, cfg.model, norm, tc.segment_tail, tc.instruction_word_swap)
    model = build_model(cfg, builder, tc.seed).to(env.device)
    optimizers = build_optimizers(model, tc)
    generator = torch.Generator().manual_seed(tc.seed * 1000 + env.rank)
    start = 0
    if resume and run_dir is not None and (run_dir / 'checkpoints' / checkpoint.LATEST).is_file():
        checkpoint.load_model(run_dir, model)
        state = checkpoint.load_training(run_dir, optimizers, generator, env.rank)
        if len(state['sampler']) != env.world_size:
            raise checkpoint.CheckpointError(
                f'{run_dir}: saved with {len(state["sampler"])} rank(s), resuming with '
                f'{env.world_size}; exact resume needs the same world size'
            )
        sampler.load_state_dict(state['sampler'][env.rank])
        norm = NormStats.from_dict(state['norm'])
        builder.norm = norm
        start = state['step']
        print0(f'resumed from step {start}', rank=env.rank)
    net = DistributedDataParallel(model) if env.enabled else model
    log = (
        MetricsLog(run_dir, start if resume else None)
        if (run_dir is not None and env.rank == 0)
        else None
    )
    draws: Iterator[int] = iter(sampler)
    autocast = torch.autocast('cuda', dtype=torch.bfloat16, enabled=env.device.type == 'cuda')
    history = []
    end = tc.steps if stop_at is None else min(stop_at, tc.steps)
    bar = tqdm(
        range(start, end),
        initial=start,
        total=tc.steps,
        desc='train',
        disable=not progress or env.rank != 0,
        dynamic_ncols=True,
    )
    t0 = time.time()
    for step in bar:
        factor = set_lr(optimizers, step, tc)
        batch = trim_text_padding(
            builder.batch([next(draws) for _ in range(tc.batch_size)], generator)
        )
        batch = {k: v.to(env.device) for k, v in batch.items()}
        with autocast:
            total, parts = net(batch, tc)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        for opt in optimizers:
            opt.step()
        done = step + 1
        if done % tc.log_every == 0 or done == tc.steps:
            values = {'loss': total.detach(), **{k: v.detach() for k, v in parts.items()}}
            if env.enabled:
                stacked = torch.stack(list(values.values())).float()
                dist.all_reduce(stacked)
                values = dict(zip(values, (stacked / env.world_size).tolist(), strict=True))
            values = {k: float(v) for k, v in values.items()}
            values.update(lr_factor=factor, grad_norm=float(grad_norm), seconds=time.time() - t0)
            history.append({'step': done, **values})
            bar.set_postfix(loss=f'{values["loss"]:.4f}')
            if log is not None:
                log.log(done, values)
        if run_dir is not None and (done % tc.checkpoint_every == 0 or done == end):
            _checkpoint(
                run_dir, done, model, optimizers, generator, sampler, norm, cfg, env, store.fps
            )
    if log is not None:
        log.close()
    return model, norm, history


def _checkpoint(run_dir, step, model, optimizers, generator, sampler, norm, cfg, env, fps) -> None:
    """Gather every rank's sampler and generator state (each draws its own stream); rank 0
    writes."""
    states = [None] * env.world_size
    gens = [None] * env.world_size
    if env.enabled:
        dist.all_gather_object(states, sampler.state_dict())
        dist.all_gather_object(gens, generator.get_state())
    else:
        states, gens = [sampler.state_dict()], [generator.get_state()]
    if env.rank == 0:
        checkpoint.save(
            run_dir,
            step,
            model,
            optimizers,
            {'config': cfg.to_dict(), 'norm': norm.as_dict(), 'sampler': states, 'fps': fps},
            gens,
        )
    if env.enabled:
        dist.barrier()


def fit_in_memory(
    cfg: Config,
    episodes,
    fps: float = 30.0,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = False,
):
    """Train on in-memory episodes (tests, tiny bundles): uniform event sampling."""
    store = EpisodeStore.from_episodes(episodes, cfg.model, fps)
    sampler = RandomEventSampler(len(store.events), cfg.train.seed)
    model, norm, _ = train(cfg, store, sampler, run_dir, resume, progress=progress)
    return model, norm


def load_trained(path: Path) -> tuple[WallWM, Config, NormStats]:
    """A model from a checkpoint (folder or run folder), with its config and normalisation."""
    model, cfg, norm, _ = load_trained_with_state(path)
    return model, cfg, norm


def load_trained_with_state(path: Path) -> tuple[WallWM, Config, NormStats, dict]:
    state = checkpoint.read_state(path)
    cfg = Config.from_dict(state['config'])
    # The weights overwrite the table, so skip the MiniLM initialisation.
    model = WallWM(dataclasses.replace(cfg.model, init_text_from_minilm=False), cfg.train.modes)
    checkpoint.load_model(path, model)
    return model.eval(), cfg, NormStats.from_dict(state['norm']), state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='wallwm-train', description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='default', help='preset name or YAML path')
    parser.add_argument('--data', required=True, type=Path, help='LeRobot dataset folder')
    parser.add_argument('--out', required=True, type=Path, help='run folder')
    parser.add_argument('--resume', action='store_true', help='continue from --out latest')
    parser.add_argument(
        '--set',
        nargs='*',
        default=[],
        metavar='SECTION.FIELD=VALUE',
        help='config overrides, e.g. train.steps=100',
    )
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    parser.add_argument(
        '--stop-at',
        type=int,
        default=None,
        help='stop after this step with a checkpoint (continue with --resume)',
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config, args.set)
    except ValueError as exc:
        parser.error(str(exc))
    if args.resume:
        try:
            saved = Config.from_dict(checkpoint.read_state(args.out)['config'])
        except checkpoint.CheckpointError as exc:
            print(f'wallwm-train: cannot resume: {exc}', file=sys.stderr)
            return 2
        if saved.model != cfg.model or saved.train.modes != cfg.train.modes:
            print(
                f'wallwm-train: cannot resume: {args.out} was trained with a different model '
                f'config ({saved.name}); pass the same --config/--set',
                file=sys.stderr,
            )
            return 2
    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.sampler import ClusterBalancedSampler

    env = Distributed(args.device)
    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    dataset = LeRobotDataset(args.data)
    store = EpisodeStore.from_dataset(dataset, cfg.model)
    image_bytes = sum(e.images.nbytes for e in store.episodes)
    print0(
        f'{len(store.episodes)} episodes, {len(store.events)} events, images '
        f'{image_bytes / 1e9:.2f} GB in memory per rank',
        rank=env.rank,
    )
    sampler = ClusterBalancedSampler(
        dataset,
        alpha=cfg.train.sampler_alpha,
        num_clusters=cfg.train.num_clusters,
        seed=cfg.train.seed,
        rank=env.rank,
        world_size=env.world_size,
        embedding=cfg.train.caption_embedding,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    if env.rank == 0:
        (args.out / 'config.yaml').write_text(_yaml(cfg))
    try:
        _, _, history = train(
            cfg, store, sampler, args.out, args.resume, env, stop_at=args.stop_at
        )
    except checkpoint.CheckpointError as exc:
        print(f'wallwm-train: {exc}', file=sys.stderr)
        return 2
    finally:
        env.close()
    if history:
        print0(f'done: step {history[-1]["step"]} loss {history[-1]["loss"]:.4f}', rank=env.rank)
    return 0


def _yaml(cfg: Config) -> str:
    import yaml

    data = cfg.to_dict()
    data['model']['joint_names'] = list(cfg.model.joint_names)
    data['model']['cameras'] = list(cfg.model.cameras)
    data['train']['modes'] = list(cfg.train.modes)
    return yaml.safe_dump(data, sort_keys=False)


if __name__ == '__main__':
    sys.exit(main())
