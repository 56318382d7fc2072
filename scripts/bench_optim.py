#!/usr/bin/env python3
"""Benchmark: Muon (hidden matrices) + AdamW (the rest) vs AdamW alone, same data, same budget.

Both runs use the same seed, so the same initial weights, the same event draws and the same flow
noise; only the optimiser differs. Reports the smoothed training loss at the end and how many
steps each run needs to reach the final smoothed loss of the AdamW-alone baseline.

    python scripts/bench_optim.py                     # tiny network, 300 steps, synthetic data
    python scripts/bench_optim.py --config default --steps 200 --set model.dim=96
"""

from __future__ import annotations

import argparse
import time

import torch
from wallwm_train.config import load_config
from wallwm_train.samples import EpisodeStore
from wallwm_train.samples import RandomEventSampler
from wallwm_train.testing import synthetic_episodes
from wallwm_train.train import train

EMA = 0.9


def smoothed(history: list[dict[str, float]]) -> list[float]:
    out, value = [], None
    for h in history:
        value = h['loss'] if value is None else EMA * value + (1 - EMA) * h['loss']
        out.append(value)
    return out


def run(cfg, store, label: str) -> list[float]:
    sampler = RandomEventSampler(len(store.events), cfg.train.seed)
    start = time.time()
    _, _, history = train(cfg, store, sampler, progress=False)
    curve = smoothed(history)
    print(f'{label:28s} final smoothed loss {curve[-1]:.4f}  ({time.time() - start:.0f} s)')
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='tiny')
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--episodes', type=int, default=24)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--set', nargs='*', default=[])
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = [
        f'train.steps={args.steps}',
        'train.log_every=1',
        'train.checkpoint_every=1000000',
        'model.init_text_from_minilm=false',
        f'train.batch_size={args.batch}',
        *args.set,
    ]
    muon_cfg = load_config(args.config, base)
    store = EpisodeStore.from_episodes(
        synthetic_episodes(args.episodes, image_size=muon_cfg.model.image_size),
        muon_cfg.model,
        30.0,
    )
    print(
        f'config {args.config}, {args.steps} steps, batch {muon_cfg.train.batch_size}, '
        f'modes {list(muon_cfg.train.modes)}, {len(store.events)} events'
    )
    curves = {
        'Muon + AdamW': run(muon_cfg, store, 'Muon + AdamW'),
        'AdamW alone': run(
            load_config(args.config, base + ['train.use_muon=false']), store, 'AdamW alone'
        ),
        'AdamW alone, lr x3': run(
            load_config(
                args.config,
                base + ['train.use_muon=false', f'train.lr_adamw={muon_cfg.train.lr_adamw * 3}'],
            ),
            store,
            'AdamW alone, lr x3',
        ),
    }
    target = curves['AdamW alone'][-1]
    print(f'steps to reach smoothed loss {target:.4f} (AdamW alone, final):')
    for label, curve in curves.items():
        step = next((i + 1 for i, v in enumerate(curve) if v <= target), None)
        print(f'  {label:26s} {step if step else "not reached":>5}')


if __name__ == '__main__':
    main()
