#!/usr/bin/env python3
"""Diagnostic: where does a bundle's event mode send the gripper for 'reach above the X'?

For every reach event of a generated sim dataset, run the bundle (ONNX Runtime, event mode, the
expert's caption) on the observation `--before-end` steps before the event's end (0: at its
start), take the segment's last action through forward kinematics, and compare its grasp point
(x, y) with the objects of the episode's layout. Minutes where a closed-loop evaluation takes half
an hour, and it separates "goes to the wrong object" from "goes to the right one, imprecisely".
Past the start the expert has already brought the gripper close, so those figures are an upper
bound on what the policy does from its own, off-target positions.

    python scripts/probe_reach.py --bundle models/default --data data/heldout \
        --split heldout --seed 100000

The layout comes from re-running the scene's reset with the episode's seed: episode j of a
`wallwm-generate` run used seed `--seed + j` (its family is `sorted(families)[j % 4]`); episodes
whose instruction does not match (replaced expert failures) are skipped and counted.
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import mujoco
import numpy as np
import pyarrow.parquet as pq
from lerobot_env_so101.ik_control import control_point
from lerobot_env_so101.mujoco_env import grasp_point_offset
from wallwm_train import keys
from wallwm_train.config import load_config
from wallwm_train.data.lerobot import LeRobotDataset
from wallwm_train.samples import EpisodeStore
from wallwm_train.samples import NormStats
from wallwm_train.samples import SampleBuilder

from wallwm_policy.core.bundle import Bundle
from wallwm_policy.core.bundle import load_bundle
from wallwm_sim.env.tabletop_env import TabletopEnv
from wallwm_sim.env.tasks import TASK_FAMILIES

REACH = 'reach above the '


class GraspPoint:
    """Forward kinematics of the SO-101's grasp point (the point the expert drives)."""

    def __init__(self, env: TabletopEnv):
        self.env = env
        self.site = env.model.site('gripperframe').id
        self.offset = grasp_point_offset(env.model, self.site)

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        self.env.data.qpos[self.env.joint_qpos] = joints
        mujoco.mj_kinematics(self.env.model, self.env.data)
        return control_point(self.env.data, self.site, self.offset).copy()


def bundle_norm(bundle: Bundle) -> NormStats:
    n = bundle.manifest.normalization
    return NormStats(
        *(
            np.asarray(v, np.float32)
            for v in (n.state.mean, n.state.std, n.action.mean, n.action.std)
        )
    )


def run_event_mode(bundle: Bundle, tensors: dict[str, np.ndarray]) -> np.ndarray:
    """The event mode's graphs in order, chained by tensor name -> actions (A, J), normalised."""
    mode = bundle.manifest.modes['event']
    tensors = dict(tensors)
    for name in (*mode.per_event, *mode.per_step):
        tensors.update(bundle.graphs[name].run(tensors))
    return tensors['actions'][0]


def episode_tasks(data: Path) -> dict[int, str]:
    tasks = {}
    for f in sorted(glob.glob(str(data / 'meta/episodes/**/*.parquet'), recursive=True)):
        for row in pq.read_table(f).to_pylist():
            tasks[row['episode_index']] = row['tasks'][0]
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bundle', type=Path, default=Path('models/default'))
    parser.add_argument('--data', type=Path, required=True, help='wallwm-generate output')
    parser.add_argument('--split', default='heldout', help='the --split it was generated with')
    parser.add_argument(
        '--seed', type=int, default=100000, help='the --seed it was generated with'
    )
    parser.add_argument('--before-end', type=int, default=0, help='0: observe at the start')
    args = parser.parse_args()

    bundle = load_bundle(args.bundle)  # verifies every file's checksum
    if 'event' not in bundle.manifest.modes:
        parser.error(f'{args.bundle} offers no event mode ({sorted(bundle.manifest.modes)})')
    cfg = load_config(bundle.manifest.created_by['config'])
    norm = bundle_norm(bundle)
    store = EpisodeStore.from_dataset(LeRobotDataset(args.data), cfg.model)
    builder = SampleBuilder(store, cfg.model, norm)
    tasks = episode_tasks(args.data)
    families = sorted(TASK_FAMILIES)
    env = TabletopEnv(render=False)
    grasp_point = GraspPoint(env)
    rng = np.random.default_rng(0)
    to_named, to_other, named_nearest, skipped = [], [], [], 0
    for index, event in enumerate(store.events):
        if not event.caption.startswith(REACH):
            continue
        j = event.episode
        env.reset(args.seed + j, families[j % len(families)], args.split)
        if env.instruction != tasks[j]:
            skipped += 1
            continue
        objects = {o.name: np.asarray(o.xy) for o in env.episode.layout.objects}
        t = max(event.start, event.end - args.before_end) if args.before_end else event.start
        s = builder.sample(index, t)
        inputs = {
            name: s[key][None]
            for name, key in (
                ('images', keys.IMAGES),
                ('state', keys.STATE),
                ('instruction_ids', keys.INSTRUCTION_IDS),
                ('instruction_mask', keys.INSTRUCTION_MASK),
                ('event_ids', keys.EVENT_IDS),
                ('event_mask', keys.EVENT_MASK),
            )
        }
        inputs['noise'] = rng.standard_normal(
            (1, cfg.model.event_action_steps, cfg.model.num_joints), np.float32
        )
        actions = run_event_mode(bundle, inputs)
        end = grasp_point(actions[event.end - t - 1] * norm.action_std + norm.action_mean)[:2]
        dist = {name: float(np.linalg.norm(end - xy)) * 100 for name, xy in objects.items()}
        named = event.caption[len(REACH) :]
        to_named.append(dist[named])
        to_other.append(min((d for n, d in dist.items() if n != named), default=np.nan))
        named_nearest.append(min(dist, key=dist.get) == named)
    to_named = np.asarray(to_named)
    print(
        json.dumps(
            {
                'bundle': str(args.bundle),
                'observed': f'{args.before_end} steps before the end'
                if args.before_end
                else 'start',
                'reach_events': len(to_named),
                'skipped_unmatched': skipped,
                'cm_to_named_median': round(float(np.median(to_named)), 2),
                'within_2cm_of_named': round(float((to_named < 2).mean()), 3),
                'named_is_nearest': round(float(np.mean(named_nearest)), 3),
                'cm_to_nearest_other_median': round(float(np.nanmedian(to_other)), 2),
            }
        )
    )


if __name__ == '__main__':
    main()
