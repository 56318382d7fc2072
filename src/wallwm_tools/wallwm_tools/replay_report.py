"""Offline replay debugger: run a model bundle on the observations of a recorded rosbag2 and
write a report (Markdown + PNG plots): predicted vs recorded joint trajectories, the event
timeline with captions and boundary probabilities, inference latency, and every frame where the
policy would have held for safety, with the reason.

    ros2 run wallwm_tools replay_report --bag run1 --bundle <bundle> --profile so101_real.yaml

The same runtime core as the node runs the bundle (ONNX Runtime, no ROS needed), re-planning every
`--replan-every` control steps on the recorded camera frames and joint states. The event text and
instruction come from the recorded `EventStatus` when the bag has it, else from the arguments.
"""

import argparse
import bisect
import sys
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import yaml
from rosbags.highlevel import AnyReader

from wallwm_tools.bag_types import typestore

STATUS_TOPIC = '/wallwm_policy/status'
DEFAULT_TOPICS = {
    'cameras': ['/camera/front/image_raw', '/camera/wrist/image_raw'],
    'joint_states': '/joint_states',
    'command': '/joint_trajectory_controller/joint_trajectory',
}


@dataclass
class Series:
    times: list[float] = field(default_factory=list)
    values: list = field(default_factory=list)

    def latest(self, t: float):
        """(time, value) of the last sample at or before t, or None."""
        i = bisect.bisect_right(self.times, t) - 1
        return (self.times[i], self.values[i]) if i >= 0 else None


@dataclass
class Recording:
    joints: Series
    cameras: dict[str, Series]
    commands: Series
    status: Series
    start: float
    end: float


def topics_from_profile(path: str | None, transport: str = 'raw') -> dict:
    if not path:
        return {**DEFAULT_TOPICS, 'transport': transport}
    params = next(iter(yaml.safe_load(Path(path).read_text()).values()))['ros__parameters']
    cams = params['cameras']
    return {
        'cameras': cams['topics'],
        'joint_states': params['joint_states_topic'],
        'command': params['command_topic'],
        'transport': cams.get('transport', 'raw'),
    }


def read_bag(bag: Path, topics: dict, joint_names: list[str]) -> Recording:
    """Everything the replay needs, in bag time (seconds); images stay encoded until used."""
    cam_topics = [
        t + '/compressed' if topics['transport'] == 'compressed' else t for t in topics['cameras']
    ]
    joints, commands, status = Series(), Series(), Series()
    cameras = {t: Series() for t in cam_topics}
    with AnyReader([bag], default_typestore=typestore()) as reader:
        wanted = set(cam_topics) | {topics['joint_states'], topics['command'], STATUS_TOPIC}
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, stamp_ns, raw in reader.messages(connections=conns):
            t = stamp_ns * 1e-9
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == topics['joint_states']:
                by_name = dict(zip(msg.name, np.asarray(msg.position, dtype=float), strict=False))
                joints.times.append(t)
                joints.values.append(np.array([by_name.get(n, np.nan) for n in joint_names]))
            elif conn.topic in cameras:
                cameras[conn.topic].times.append(t)
                cameras[conn.topic].values.append(msg)
            elif conn.topic == topics['command'] and len(msg.points):
                by_name = dict(
                    zip(msg.joint_names, np.asarray(msg.points[0].positions), strict=False)
                )
                commands.times.append(t)
                commands.values.append(np.array([by_name.get(n, np.nan) for n in joint_names]))
            elif conn.topic == STATUS_TOPIC:
                status.times.append(t)
                status.values.append((msg.instruction, msg.event_text, msg.boundary_probability))
    all_times = joints.times + [t for s in cameras.values() for t in s.times]
    if not joints.times:
        raise ValueError(f'{bag}: no {topics["joint_states"]} messages')
    return Recording(joints, cameras, commands, status, min(all_times), max(all_times))


def _decode(msg):
    from wallwm_policy.core.preprocess import compressed_to_rgb
    from wallwm_policy.core.preprocess import raw_image_to_rgb

    if hasattr(msg, 'encoding'):
        return raw_image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data.tobytes())
    return compressed_to_rgb(msg.format, msg.data.tobytes())


@dataclass
class PlanRow:
    time: float
    event_text: str
    actions: np.ndarray  # (S, J)
    boundary: np.ndarray  # (S,)
    latency_ms: float


@dataclass
class Replay:
    step_period: float
    joint_names: list[str]
    plans: list[PlanRow] = field(default_factory=list)
    holds: list[tuple[float, str]] = field(default_factory=list)


def replay(
    rec: Recording,
    bundle_path: Path,
    mode: str,
    instruction: str,
    event_text: str,
    replan_every: int,
    max_age: float,
    seed: int = 0,
    noise_scale: float | None = None,
) -> Replay:
    """`noise_scale` None: the policy node's default, so the replay plans what the node would."""
    from wallwm_policy.core.bundle import load_bundle
    from wallwm_policy.core.controller import ControlConfig
    from wallwm_policy.core.pipeline import ModelOutputError
    from wallwm_policy.core.pipeline import ModePipeline
    from wallwm_policy.core.pipeline import Observation
    from wallwm_policy.core.preprocess import InputError

    bundle = load_bundle(bundle_path)
    pipeline = ModePipeline(bundle, mode)
    m = bundle.manifest
    cam_names = [c.name for c in m.cameras]
    result = Replay(pipeline.step_period, list(m.joint_names))
    rng = np.random.default_rng(seed)
    scale = ControlConfig.noise_scale if noise_scale is None else noise_scale
    context, context_key = None, None
    t = rec.start
    while t <= rec.end:
        reason = None
        joint = rec.joints.latest(t)
        if joint is None or t - joint[0] > max_age:
            reason = 'stale joint states' if joint else 'no joint state yet'
        elif not np.all(np.isfinite(joint[1])):
            missing = [
                n for n, v in zip(m.joint_names, joint[1], strict=False) if not np.isfinite(v)
            ]
            reason = f'joint state missing or non-finite: {missing}'
        images = {}
        for name, series in zip(cam_names, rec.cameras.values(), strict=False):
            frame = series.latest(t)
            if reason:
                break
            if frame is None or t - frame[0] > max_age:
                reason = f'stale camera: {name}' if frame else f'no image yet: {name}'
                break
            try:
                images[name] = _decode(frame[1])
            except InputError as error:
                reason = f'camera {name}: {error}'
        recorded = rec.status.latest(t)
        instr = recorded[1][0] if recorded and recorded[1][0] else instruction
        text = recorded[1][1] if recorded and recorded[1][1] else event_text
        if reason is None:
            obs = Observation(stamp=t, images=images, positions=joint[1])
            try:
                if context is None or context_key != (instr, text):
                    context, context_key = (
                        pipeline.start_event(obs, instr, text, rng, scale),
                        (instr, text),
                    )
                plan = pipeline.plan(obs, context, rng, scale)
                result.plans.append(
                    PlanRow(
                        t, context.caption, plan.actions, plan.boundary, 1e3 * plan.inference_s
                    )
                )
            except (ModelOutputError, InputError) as error:
                reason = str(error)
        if reason is not None:
            result.holds.append((t, reason))
        t += replan_every * pipeline.step_period
    return result


def write_report(rec: Recording, result: Replay, out: Path, bag: Path, bundle: Path) -> Path:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    t0 = rec.start
    names = result.joint_names
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 1.6 * len(names)), sharex=True)
    joints = np.array(rec.joints.values)
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(np.array(rec.joints.times) - t0, joints[:, j], 'k', lw=1, label='recorded state')
        if rec.commands.times:
            ax.plot(
                np.array(rec.commands.times) - t0,
                np.array(rec.commands.values)[:, j],
                'tab:blue',
                lw=1,
                label='recorded command',
            )
        for k, row in enumerate(result.plans):
            steps = row.time - t0 + result.step_period * np.arange(len(row.actions))
            ax.plot(
                steps,
                row.actions[:, j],
                'tab:orange',
                lw=0.8,
                alpha=0.7,
                label='predicted' if k == 0 else None,
            )
        for t, _ in result.holds:
            ax.axvline(t - t0, color='tab:red', alpha=0.2, lw=1)
        ax.set_ylabel(names[j], fontsize=7)
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=3)
    np.atleast_1d(axes)[-1].set_xlabel('bag time [s]')
    fig.tight_layout()
    fig.savefig(out / 'trajectories.png', dpi=100)
    plt.close(fig)

    fig, (ax_e, ax_l) = plt.subplots(2, 1, figsize=(10, 4.5))
    if result.plans:
        ax_e.plot(
            [p.time - t0 for p in result.plans],
            [p.boundary[0] for p in result.plans],
            'tab:orange',
            label='predicted boundary probability (first step)',
        )
    if rec.status.times:
        ax_e.plot(
            np.array(rec.status.times) - t0,
            [v[2] for v in rec.status.values],
            'k',
            lw=0.8,
            label='recorded boundary probability',
        )
    last = None
    for p in result.plans:
        if p.event_text != last:
            ax_e.axvline(p.time - t0, color='gray', lw=0.8)
            ax_e.text(p.time - t0, 1.02, p.event_text, fontsize=6)
            last = p.event_text
    ax_e.set_ylim(0, 1.2)
    ax_e.legend(fontsize=7)
    ax_e.set_title('event timeline', fontsize=9)
    latencies = [p.latency_ms for p in result.plans]
    if latencies:
        ax_l.hist(latencies, bins=30, color='tab:green')
    ax_l.set_xlabel('inference latency [ms]')
    fig.tight_layout()
    fig.savefig(out / 'events.png', dpi=100)
    plt.close(fig)

    lat = np.array(latencies) if latencies else np.array([np.nan])
    lines = [
        '# wallwm replay report',
        '',
        f'- bag: `{bag}`',
        f'- bundle: `{bundle}`',
        f'- plans: {len(result.plans)}, held: {len(result.holds)}',
        f'- inference latency: median {np.median(lat):.2f} ms, p99 '
        f'{np.percentile(lat, 99):.2f} ms',
        '',
        '![trajectories](trajectories.png)',
        '',
        '![events](events.png)',
        '',
        '## Frames held for safety',
        '',
    ]
    if result.holds:
        lines += ['| bag time [s] | reason |', '|---|---|']
        lines += [f'| {t - t0:.2f} | {reason} |' for t, reason in result.holds]
    else:
        lines.append('none')
    path = out / 'report.md'
    path.write_text('\n'.join(lines) + '\n')
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='replay_report', description=__doc__.split('\n')[0])
    parser.add_argument('--bag', required=True, type=Path)
    parser.add_argument('--bundle', required=True, type=Path)
    parser.add_argument(
        '--profile', default=None, help='robot profile YAML (topics); default: sim'
    )
    parser.add_argument('--mode', default='event', choices=('event', 'unified', 'chunk'))
    parser.add_argument('--instruction', default='', help='used when the bag has no EventStatus')
    parser.add_argument('--event-text', default='', help='used when the bag has no EventStatus')
    parser.add_argument('--replan-every', type=int, default=8, help='control steps between plans')
    parser.add_argument('--max-age', type=float, default=0.5, help='stale input threshold [s]')
    parser.add_argument(
        '--noise-scale', type=float, default=None, help="flow start noise (default: the node's)"
    )
    parser.add_argument(
        '--out', type=Path, default=None, help='report folder (default: <bag>_report)'
    )
    args = parser.parse_args(argv)
    from wallwm_policy.core.bundle import BundleError
    from wallwm_policy.core.bundle import load_bundle

    try:
        joint_names = list(load_bundle(args.bundle).manifest.joint_names)
        rec = read_bag(args.bag, topics_from_profile(args.profile), joint_names)
        result = replay(
            rec,
            args.bundle,
            args.mode,
            args.instruction,
            args.event_text,
            args.replan_every,
            args.max_age,
            noise_scale=args.noise_scale,
        )
    except (BundleError, ValueError, FileNotFoundError) as error:
        print(f'replay_report: {error}', file=sys.stderr)
        return 2
    report = write_report(
        rec, result, args.out or Path(f'{args.bag}_report'), args.bag, args.bundle
    )
    print(f'{len(result.plans)} plans, {len(result.holds)} held frames; report: {report}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
