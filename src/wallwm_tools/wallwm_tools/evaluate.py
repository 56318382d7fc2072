"""Closed-loop evaluation in the MuJoCo sim: success per task family and mode, with 95% Wilson
intervals, event completion, episode length and inference latency.

    ros2 run wallwm_tools evaluate --bundle models/default --modes event unified chunk \\
        --chunk-bundle models/chunk_baseline --episodes 50

Episodes run the policy node's runtime core (`PolicyController`: the same planning, chunk
blending, event state machine and safety filter as the node) directly on the simulation, without
ROS, for speed. The sim steps synchronously: each control tick waits for the model, so results do
not depend on the machine's speed (latency is measured and reported separately). By default the
seeds (from 100000) and the instruction paraphrases (`split='heldout'`) are ones training never
saw. Cameras render at the bundle's input size (as the training data was rendered). Event mode
receives the expert's event descriptions one at a time, as an operator or planner
would send them; unified and chunk modes receive only the instruction.

In event mode every event's end is recorded too (`events.csv`, and a second table per event kind):
how it ended (at its boundary or at the segment's end) and, where the expert's own end is a place
in the world (above or at an object), how far the grasp point is from it then, in (x, y). That
separates "the reach ended 4 cm off and the grasp missed" from "the grasp closed where it should".
"""

import argparse
import csv
import math
import multiprocessing
import sys
import time
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELDOUT_FIRST_SEED = 100_000
MAX_VELOCITY = 3.0  # rad/s, as in the so101_sim profile
EPISODE_STEP_FACTOR = 1.6  # episode budget: this many times the expert's episode length
SETTLE_STEPS = 15


@dataclass(frozen=True)
class EpisodeResult:
    family: str
    mode: str
    seed: int
    success: bool
    events_done: int  # -1 in chunk mode, which has no events to complete
    events_total: int
    steps: int
    latency_ms: float  # median inference time of the episode's plans


@dataclass(frozen=True)
class EventEnd:
    """One event of an event-mode episode, as it ended."""

    family: str
    seed: int
    index: int
    caption: str
    steps: int
    reason: str  # the controller's: 'boundary', 'segment_end', ...
    # (x, y) distance [cm] of the grasp point from where the expert would end this event, in the
    # world as it is then (for a carry: of the held object from above its target); NaN where the
    # expert's end is relative to the gripper alone (release, push)
    end_error_cm: float


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


_BUNDLE = None


def difference_interval(
    wins_a: int, n_a: int, wins_b: int, n_b: int, z: float = 1.96
) -> tuple[float, float, float]:
    """Success-rate difference a - b with Newcombe's 95% interval (hybrid Wilson score,
    method 10): (difference, low, high)."""
    p_a, p_b = wins_a / n_a, wins_b / n_b
    l_a, u_a = wilson(wins_a, n_a, z)
    l_b, u_b = wilson(wins_b, n_b, z)
    d = p_a - p_b
    low = d - math.sqrt((p_a - l_a) ** 2 + (u_b - p_b) ** 2)
    high = d + math.sqrt((u_a - p_a) ** 2 + (p_b - l_b) ** 2)
    return d, low, high


def _bundle(path: str):
    global _BUNDLE  # one bundle per worker process
    if _BUNDLE is None or _BUNDLE[0] != path:
        from wallwm_policy.core.bundle import load_bundle
        from wallwm_policy.core.sessions import SessionConfig

        _BUNDLE = (path, load_bundle(path, SessionConfig(intra_op_threads=1)))
    return _BUNDLE[1]


def run_episode(
    bundle_path: str,
    family: str,
    mode: str,
    seed: int,
    split: str,
    noise_scale: float,
    execute_steps: int,
    approach_steps: int,
) -> tuple[EpisodeResult, list[EventEnd]]:
    from wallwm_policy.core.controller import ControlConfig
    from wallwm_policy.core.controller import PolicyController
    from wallwm_policy.core.pipeline import Observation
    from wallwm_policy.core.safety import JointLimits
    from wallwm_sim.env.expert import expert_steps
    from wallwm_sim.env.scene import JOINT_NAMES
    from wallwm_sim.env.scene import SceneConfig
    from wallwm_sim.env.tabletop_env import TabletopEnv
    from wallwm_sim.env.tasks import event_target

    bundle = _bundle(bundle_path)
    # Cameras render at the model's input size, as `wallwm-generate --image-size` renders the
    # training data: the frames the model sees here are the kind it was trained on.
    height, width = bundle.manifest.image_size
    with TabletopEnv(SceneConfig(image_height=height, image_width=width)) as env:
        obs = env.reset(seed, family, split)
        expert_events = env.episode.plan  # the expert's events, in order
        budget = int(expert_steps(expert_events) * EPISODE_STEP_FACTOR)
        limits = JointLimits.from_profile(
            bundle.manifest.joint_names,
            JOINT_NAMES,
            env.joint_range[:, 0],
            env.joint_range[:, 1],
            [MAX_VELOCITY] * len(JOINT_NAMES),
        )
        outcomes = []
        controller = PolicyController(
            bundle,
            limits,
            ControlConfig(
                seed=seed,
                noise_scale=noise_scale,
                execute_steps=execute_steps,
                approach_steps=approach_steps,
            ),
            mode=mode,
            on_outcome=outcomes.append,
        )
        index = {n: i for i, n in enumerate(JOINT_NAMES)}
        order = [index[n] for n in bundle.manifest.joint_names]
        dt = 1.0 / env.config.control_rate_hz
        captions = [e.caption for e in expert_events]
        pending = list(captions) if mode == 'event' else []
        now, done, latencies, step, last_event = 0.0, 0, [], 0, 0
        ends, event_start = [], 0
        if mode == 'event':
            controller.start_event(pending.pop(0), env.instruction, 0.0, now)
        else:
            controller.start_instruction(env.instruction, len(captions) + 2, 0.0, now)
        settle = None
        # Without a new command the arm holds the last one, as the sim bridge's trajectory
        # follower (and a robot's trajectory controller) does; commanding the measured state
        # instead would let the arm sag under gravity and a closed gripper slacken.
        command = obs.state.copy()
        while step < budget:
            positions = obs.state[order]
            result = controller.tick(Observation(now, obs.images, positions), '', positions, now)
            controller.wait_for_inference(10.0)  # synchronous stepping (see the module doc)
            if result.plan is not None:
                latencies.append(1e3 * result.plan.plan.inference_s)
            last_event = max(last_event, result.status.event_index)
            if result.command is not None:
                command[order] = result.command
            obs = env.step(command.copy())
            now += dt
            step += 1
            if outcomes:
                outcome = outcomes.pop(0)
                done += int(outcome.success) if mode == 'event' else 0
                if mode == 'event':
                    k = len(ends)
                    target = event_target(expert_events[k], env)
                    error = (
                        float('nan')
                        if target is None
                        else 100 * float(np.hypot(*(env.grasp_point()[:2] - target[:2])))
                    )
                    ends.append(
                        EventEnd(
                            family, seed, k, captions[k], step - event_start, outcome.reason, error
                        )
                    )
                    event_start = step
                if mode == 'event' and pending:
                    controller.start_event(pending.pop(0), env.instruction, 0.0, now)
            if env.success():
                settle = SETTLE_STEPS if settle is None else settle - 1
                if settle == 0:
                    break
            else:
                settle = None
        controller.close()
        if mode == 'unified':  # events the model decoded and finished (boundaries crossed)
            done = min(last_event, len(captions))
        elif mode == 'chunk':  # chunks know no events: completion is not measured
            done = -1
        result = EpisodeResult(
            family,
            mode,
            seed,
            env.success(),
            done,
            len(captions),
            step,
            float(np.median(latencies)) if latencies else float('nan'),
        )
        return result, ends


def _run(args) -> tuple[EpisodeResult, list[EventEnd]]:
    return run_episode(*args)


def evaluate(
    bundle: str,
    families,
    modes,
    episodes: int,
    split: str,
    first_seed: int,
    workers: int,
    progress: bool = True,
    chunk_bundle: str | None = None,
    *,
    noise_scale: float,
    execute_steps: int,
    approach_steps: int,
) -> tuple[list[EpisodeResult], list[EventEnd]]:
    jobs = [
        (
            chunk_bundle if m == 'chunk' and chunk_bundle else bundle,
            f,
            m,
            first_seed + i,
            split,
            noise_scale,
            execute_steps,
            approach_steps,
        )
        for m in modes
        for f in families
        for i in range(episodes)
    ]
    if workers <= 1:
        iterator = map(_run, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context('spawn').Pool(workers)
        iterator = pool.imap(_run, jobs)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, total=len(jobs), desc='episodes')
    try:
        runs = list(iterator)
        return [r for r, _ in runs], [e for _, ends in runs for e in ends]
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def read_episodes(path: Path) -> list[EpisodeResult]:
    """The episodes an earlier run wrote to its episodes.csv."""
    with open(path, newline='') as f:
        return [
            EpisodeResult(
                r['family'],
                r['mode'],
                int(r['seed']),
                r['success'] == 'True',
                int(r['events_done']),
                int(r['events_total']),
                int(r['steps']),
                float(r['latency_ms']),
            )
            for r in csv.DictReader(f)
        ]


def table(results: list[EpisodeResult]) -> list[dict]:
    rows = []
    keys = sorted({(r.mode, r.family) for r in results})
    for mode, family in keys:
        rs = [r for r in results if r.mode == mode and r.family == family]
        wins = sum(r.success for r in rs)
        lo, hi = wilson(wins, len(rs))
        rows.append(
            {
                'mode': mode,
                'family': family,
                'episodes': len(rs),
                'success': wins / len(rs),
                'ci95_low': lo,
                'ci95_high': hi,
                'event_completion': None
                if mode == 'chunk'
                else sum(r.events_done for r in rs) / max(1, sum(r.events_total for r in rs)),
                'successes': wins,
                'mean_steps': float(np.mean([r.steps for r in rs])),
                'latency_ms_median': float(np.nanmedian([r.latency_ms for r in rs])),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        '| mode | family | episodes | success | 95% CI (Wilson) | event completion | '
        'mean steps | inference ms (median) |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        completion = 'n/a' if r['event_completion'] is None else f"{r['event_completion']:.0%}"
        lines.append(
            f"| {r['mode']} | {r['family']} | {r['episodes']} | {r['success']:.0%} | "
            f"{r['ci95_low']:.0%}–{r['ci95_high']:.0%} | {completion} | "
            f"{r['mean_steps']:.0f} | {r['latency_ms_median']:.2f} |"
        )
    return '\n'.join(lines)


def event_table(ends: list[EventEnd]) -> str:
    """Markdown, per family and event kind (the caption's first word: reach, grasp, lift, ...):
    how often the event ended at its boundary, and how far from the expert's end. Only events
    that ended count: an episode stops once its task has succeeded."""
    if not ends:
        return ''
    lines = [
        '| family | event | events | ended at boundary | end error cm (median) | within 2 cm |',
        '|---|---|---|---|---|---|',
    ]
    first = {}  # kinds in the order their events come in the task
    for e in sorted(ends, key=lambda e: e.index):
        first.setdefault((e.family, e.caption.split()[0]), e.index)
    kinds = sorted(first, key=lambda k: (k[0], first[k]))
    for family, kind in kinds:
        es = [e for e in ends if e.family == family and e.caption.split()[0] == kind]
        boundary = sum(e.reason == 'boundary' for e in es) / len(es)
        errors = np.array([e.end_error_cm for e in es])
        errors = errors[~np.isnan(errors)]
        median, within = (
            (f'{np.median(errors):.2f}', f'{np.mean(errors <= 2.0):.0%}')
            if len(errors)
            else ('n/a', 'n/a')
        )
        lines.append(f'| {family} | {kind} | {len(es)} | {boundary:.0%} | {median} | {within} |')
    return '\n'.join(lines)


def comparison(rows: list[dict], baseline: str = 'chunk') -> str:
    """Markdown: each mode's success minus the baseline's, per family, with Newcombe 95% CIs."""
    by_key = {(r['mode'], r['family']): r for r in rows}
    lines = []
    for (mode, family), r in by_key.items():
        base = by_key.get((baseline, family))
        if mode == baseline or base is None:
            continue
        d, low, high = difference_interval(
            r['successes'], r['episodes'], base['successes'], base['episodes']
        )
        lines.append(f'| {mode} − {baseline} | {family} | {d:+.0%} | {low:+.0%} to {high:+.0%} |')
    if not lines:
        return ''
    head = [
        '| modes | family | success difference | 95% CI (Newcombe) |',
        '|---|---|---|---|',
    ]
    return '\n'.join(head + lines)


def main(argv=None) -> int:
    from wallwm_sim.env.tasks import TASK_FAMILIES

    parser = argparse.ArgumentParser(prog='evaluate', description=__doc__.split('\n')[0])
    parser.add_argument('--bundle', required=True)
    parser.add_argument(
        '--chunk-bundle', default=None, help='bundle for chunk mode (default: --bundle)'
    )
    parser.add_argument(
        '--modes', nargs='+', default=['event'], choices=('event', 'unified', 'chunk')
    )
    parser.add_argument('--families', nargs='+', default=sorted(TASK_FAMILIES))
    parser.add_argument('--episodes', type=int, default=50, help='per family and mode')
    parser.add_argument('--split', default='heldout', choices=('train', 'heldout'))
    parser.add_argument('--first-seed', type=int, default=HELDOUT_FIRST_SEED)
    parser.add_argument('--workers', type=int, default=max(1, multiprocessing.cpu_count()))
    parser.add_argument('--out', type=Path, default=Path('outputs/eval'))
    parser.add_argument(
        '--noise-scale',
        type=float,
        default=None,
        help="scale of the flow's start noise (default: the policy node's)",
    )
    parser.add_argument(
        '--execute-steps',
        type=int,
        default=None,
        help="H: steps executed from each plan before the next (default: the policy node's)",
    )
    parser.add_argument(
        '--approach-steps',
        type=int,
        default=None,
        help='replan once when a planned boundary is this many steps away (0: off; default: the '
        "policy node's)",
    )
    parser.add_argument(
        '--with-episodes',
        nargs='+',
        type=Path,
        default=[],
        metavar='CSV',
        help='episodes.csv of earlier runs (e.g. the baseline, evaluated on its own) to add to '
        'the table; same split and seeds expected',
    )
    args = parser.parse_args(argv)
    from wallwm_policy.core.controller import ControlConfig
    from wallwm_policy.core.manifest import load as load_manifest

    noise_scale = ControlConfig.noise_scale if args.noise_scale is None else args.noise_scale
    execute_steps = args.execute_steps
    if execute_steps is None:
        execute_steps = ControlConfig.execute_steps
    approach_steps = args.approach_steps
    if approach_steps is None:
        approach_steps = ControlConfig.approach_steps
    try:  # validated before any episode runs
        ControlConfig(
            noise_scale=noise_scale, execute_steps=execute_steps, approach_steps=approach_steps
        )
    except ValueError as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    earlier = [r for path in args.with_episodes for r in read_episodes(path)]
    planned = {
        (m, f, args.first_seed + i)
        for m in args.modes
        for f in args.families
        for i in range(args.episodes)
    }
    repeated = sorted(planned & {(r.mode, r.family, r.seed) for r in earlier})
    if repeated:
        parser.error(
            f'--with-episodes already holds {len(repeated)} of these episodes, '
            f'e.g. mode, family, seed = {repeated[0]}'
        )
    results, ends = evaluate(
        args.bundle,
        args.families,
        args.modes,
        args.episodes,
        args.split,
        args.first_seed,
        args.workers,
        chunk_bundle=args.chunk_bundle,
        noise_scale=noise_scale,
        execute_steps=execute_steps,
        approach_steps=approach_steps,
    )
    results = earlier + results
    rows = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / 'episodes.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    if ends:
        with open(args.out / 'events.csv', 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(asdict(ends[0])))
            writer.writeheader()
            writer.writerows(asdict(e) for e in ends)
    text = markdown(rows)
    differences = comparison(rows)
    if differences:
        text += '\n\n' + differences
    events = event_table(ends)
    if events:
        text += "\n\nEvent mode, each event as it ended (this run's episodes):\n\n" + events
    bundles = f'Bundle `{args.bundle}`' + (
        f' (chunk mode: `{args.chunk_bundle}`)' if args.chunk_bundle else ''
    )
    if args.with_episodes:
        bundles += ', with the episodes of ' + ', '.join(f'`{p}`' for p in args.with_episodes)
    event = load_manifest(args.bundle).modes.get('event')
    if 'event' in args.modes and event is not None and not event.reads_instruction:
        bundles += ' (its event mode does not read the instruction: the split changes only unified'
        bundles += ' and chunk mode)'
    approach = (
        f', replanned once {approach_steps} steps before a planned boundary'
        if approach_steps
        else ''
    )
    (args.out / 'table.md').write_text(
        f'{bundles}, split `{args.split}`, seeds from {args.first_seed}, '
        f'{args.episodes} episodes per family and mode, noise scale {noise_scale:g}, '
        f'at most {execute_steps} steps executed per plan{approach}.'
        f'\n\n{text}\n'
    )
    print(text)
    read = f' (+ {len(earlier)} read from earlier runs)' if earlier else ''
    print(
        f'\n{len(results) - len(earlier)} episodes in {time.perf_counter() - start:.0f} s{read}; '
        f'written to {args.out}/table.md and episodes.csv' + (' and events.csv' if ends else '')
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
