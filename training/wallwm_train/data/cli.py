"""`wallwm-data`: inspect and check event datasets.

    wallwm-data validate data/sim                # every problem with its location; exit 1 if any
    wallwm-data stats data/sim --plot stats.png  # episodes, events, durations, cluster sizes
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def cmd_validate(args) -> int:
    from wallwm_train.data.lerobot import validate

    problems = validate(args.dataset)
    for problem in problems:
        print(f'{args.dataset}: {problem}')
    print(f'{args.dataset}: {"valid" if not problems else f"{len(problems)} problem(s)"}')
    return 1 if problems else 0


def cmd_stats(args) -> int:
    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.sampler import ClusterBalancedSampler

    ds = LeRobotDataset(args.dataset)
    durations = np.array([e.end - e.start for _, e in ds.events])
    sampler = ClusterBalancedSampler(ds, alpha=args.alpha, num_clusters=args.clusters, seed=0)
    sources = Counter(e.source for _, e in ds.events)
    print(f'episodes: {ds.num_episodes}, frames: {ds.info["total_frames"]}, fps: {ds.fps}, '
          f'cameras: {ds.camera_names}')
    print(f'events: {len(ds.events)} ({dict(sources)}); duration [frames] min {durations.min()}, '
          f'median {np.median(durations):.0f}, max {durations.max()}')
    print(f'clusters (k-means, k={len(sampler.sizes)}): sizes {sorted(sampler.sizes.tolist())}; '
          f'draw probabilities at alpha={args.alpha}: '
          f'{np.round(sorted(sampler.probabilities), 3).tolist()}')
    captions = Counter(e.caption for _, e in ds.events)
    for caption, n in captions.most_common(args.top):
        print(f'  {n:5d}  {caption}')
    if args.plot:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt

        fig, (ax_d, ax_c) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_d.hist(durations / ds.fps, bins=30, color='tab:blue')
        ax_d.set_xlabel('event duration [s]')
        ax_d.set_ylabel('events')
        order = np.argsort(sampler.sizes)[::-1]
        ax_c.bar(range(len(order)), sampler.sizes[order], color='tab:orange', label='events')
        ax_c2 = ax_c.twinx()
        ax_c2.plot(range(len(order)), sampler.probabilities[order], 'k.-',
                   label=f'draw probability (alpha={args.alpha})')
        ax_c.set_xlabel('cluster (by size)')
        ax_c.set_ylabel('events')
        ax_c2.set_ylabel('draw probability')
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        plt.close(fig)
        print(f'plot: {args.plot}')
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='wallwm-data', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    v = sub.add_parser('validate', help='check a dataset; report every problem')
    v.add_argument('dataset', type=Path)
    s = sub.add_parser('stats', help='episodes, events, durations, clusters (+ PNG plot)')
    s.add_argument('dataset', type=Path)
    s.add_argument('--plot', type=Path, default=None)
    s.add_argument('--alpha', type=float, default=0.5)
    s.add_argument('--clusters', type=int, default=8)
    s.add_argument('--top', type=int, default=10, help='most common captions to list')
    args = parser.parse_args(argv)
    try:
        return {'validate': cmd_validate, 'stats': cmd_stats}[args.command](args)
    except (FileNotFoundError, ValueError) as error:
        print(f'wallwm-data: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
