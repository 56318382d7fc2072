"""`wallwm-data`: convert, segment, inspect and check event datasets.

wallwm-data convert rec/ data/real --profile so101_sim   # rosbag2 -> dataset (+ drop report)
wallwm-data segment data/real data/real_auto             # add auto events where none exist
wallwm-data validate data/sim                # every problem with its location; exit 1 if any
wallwm-data stats data/sim --plot stats.png  # episodes, events, durations, cluster sizes
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from wallwm_train.data.segment import DEFAULT as SEGMENT


def cmd_convert(args) -> int:
    from wallwm_train.data.rosbag import Profile
    from wallwm_train.data.rosbag import builtin_profile
    from wallwm_train.data.rosbag import convert

    path = Path(args.profile)
    if not path.suffix:
        path = builtin_profile(args.profile)
    if not path.is_file():
        raise FileNotFoundError(f'profile {args.profile!r} not found ({path})')
    report = convert(args.bag, args.out, Profile.load(path), events=args.events, progress=True)
    print(report.text())
    print(f'wrote {args.out}')
    return 0


def cmd_segment(args) -> int:
    from tqdm import tqdm

    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.lerobot import LeRobotWriter
    from wallwm_train.data.segment import SegmentConfig
    from wallwm_train.data.segment import merge
    from wallwm_train.data.segment import segment

    config = SegmentConfig(
        gripper_speed=args.gripper_speed,
        pause_speed=args.pause_speed,
        pause_s=args.pause_s,
        minimum_ratio=args.minimum_ratio,
        min_event_s=args.min_event_s,
    )
    ds = LeRobotDataset(args.dataset)
    gripper = ds.joint_names.index(args.gripper) if args.gripper in ds.joint_names else -1
    if ds.num_episodes == 0:
        raise ValueError(f'{args.dataset}: no episodes')
    features = ds.info['features']
    cameras = {c: tuple(features['observation.images.' + c]['shape'][:2]) for c in ds.camera_names}
    added = 0
    extra_features = {key: features[key]['names'] for key in ds.extra_features}
    with LeRobotWriter(
        args.out,
        ds.fps,
        ds.joint_names,
        cameras,
        ds.info.get('robot_type') or 'so101',
        extra_features,
    ) as writer:
        for i in tqdm(range(ds.num_episodes), desc='segment', unit='ep'):
            ep = ds.episode(i)
            auto = segment(ep.state, ds.fps, ep.task, gripper, ds.joint_names, config)
            events = merge(ep.events, auto)
            added += len(events) - len(ep.events)
            writer.add_episode(ep.task, ep.state, ep.action, ep.images, events, ep.extra)
    print(
        f'{ds.num_episodes} episodes, {added} auto events added (imported events kept); '
        f'wrote {args.out}'
    )
    return 0


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
    sampler = ClusterBalancedSampler(
        ds, alpha=args.alpha, num_clusters=args.clusters, seed=0, embedding=args.embedding
    )
    sources = Counter(e.source for _, e in ds.events)
    print(
        f'episodes: {ds.num_episodes}, frames: {ds.info["total_frames"]}, fps: {ds.fps}, '
        f'cameras: {ds.camera_names}'
    )
    print(
        f'events: {len(ds.events)} ({dict(sources)}); duration [frames] min {durations.min()}, '
        f'median {np.median(durations):.0f}, max {durations.max()}'
    )
    print(
        f'clusters (k-means, k={len(sampler.sizes)}): sizes {sorted(sampler.sizes.tolist())}; '
        f'draw probabilities at alpha={args.alpha}: '
        f'{np.round(sorted(sampler.probabilities), 3).tolist()}'
    )
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
        ax_c2.plot(
            range(len(order)),
            sampler.probabilities[order],
            'k.-',
            label=f'draw probability (alpha={args.alpha})',
        )
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
    c = sub.add_parser('convert', help='rosbag2 (mcap or sqlite3) -> dataset')
    c.add_argument('bag', type=Path)
    c.add_argument('out', type=Path)
    c.add_argument('--profile', default='so101_sim', help='built-in name or YAML path')
    c.add_argument(
        '--events',
        type=Path,
        default=None,
        help='events JSON/CSV (default: <bag>.events.json if present, else auto)',
    )
    g = sub.add_parser('segment', help='add auto events; imported captions win')
    g.add_argument('dataset', type=Path)
    g.add_argument('out', type=Path)
    g.add_argument('--gripper', default='gripper', help='gripper joint name')
    g.add_argument(
        '--gripper-speed', type=float, default=SEGMENT.gripper_speed, help='rad/s: gripper moving'
    )
    g.add_argument(
        '--pause-speed', type=float, default=SEGMENT.pause_speed, help='rad/s: arm at rest'
    )
    g.add_argument(
        '--pause-s', type=float, default=SEGMENT.pause_s, help='a rest this long is a pause'
    )
    g.add_argument(
        '--minimum-ratio',
        type=float,
        default=SEGMENT.minimum_ratio,
        help='speed minima below this x median speed are boundaries',
    )
    g.add_argument('--min-event-s', type=float, default=SEGMENT.min_event_s, help='shortest event')
    v = sub.add_parser('validate', help='check a dataset; report every problem')
    v.add_argument('dataset', type=Path)
    s = sub.add_parser('stats', help='episodes, events, durations, clusters (+ PNG plot)')
    s.add_argument('dataset', type=Path)
    s.add_argument('--plot', type=Path, default=None)
    s.add_argument('--alpha', type=float, default=0.5)
    s.add_argument('--clusters', type=int, default=8)
    s.add_argument(
        '--embedding',
        choices=['minilm', 'tfidf'],
        default='minilm',
        help='caption embedding for clustering (tfidf: no model load)',
    )
    s.add_argument('--top', type=int, default=10, help='most common captions to list')
    args = parser.parse_args(argv)
    try:
        commands = {
            'convert': cmd_convert,
            'segment': cmd_segment,
            'validate': cmd_validate,
            'stats': cmd_stats,
        }
        return commands[args.command](args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f'wallwm-data: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
