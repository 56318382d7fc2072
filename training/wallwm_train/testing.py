"""Procedural episodes and a tiny exported bundle, for tests across the workspace.

`export_tiny_bundle(out_dir)` trains the tiny config for a few steps on procedurally generated
trajectories and exports a bundle offering event, unified and chunk modes (runtime tests use it
from a session fixture). Everything is seeded: the same call gives the same bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np

from wallwm_train.config import SO101_JOINTS

TASKS = ('put the red cube in the bin', 'push the blue block to the left')
PHASES = (('reach above the {obj}', 'grasp the {obj}', 'move it over the target'),)
OBJECTS = {
    'put the red cube in the bin': 'red cube',
    'push the blue block to the left': 'blue block',
}
COLORS = {'red cube': (220, 40, 40), 'blue block': (40, 60, 220)}


@dataclass
class Event:
    """Same fields as wallwm_train.data.event.Event (start, end exclusive, caption)."""

    start: int
    end: int
    caption: str
    level: str = 'event'
    source: str = 'expert'


@dataclass
class Episode:
    task: str
    state: np.ndarray
    action: np.ndarray
    images: dict[str, np.ndarray]
    events: list[Event] = field(default_factory=list)


def synthetic_episodes(
    num_episodes: int = 6,
    length: int = 36,
    image_size: int = 32,
    cameras: tuple[str, ...] = ('front', 'wrist'),
    seed: int = 0,
) -> list[Episode]:
    """Episodes of 3 events each: the arm moves to a per-event goal; a coloured square in the
    images follows the first two joints, so observations, events and actions are related."""
    rng = np.random.default_rng(seed)
    joints = len(SO101_JOINTS)
    episodes = []
    for i in range(num_episodes):
        task = TASKS[i % len(TASKS)]
        obj = OBJECTS[task]
        cuts = np.sort(rng.choice(np.arange(6, length - 6), size=2, replace=False))
        bounds = [0, int(cuts[0]), int(cuts[1]), length]
        state = np.zeros((length, joints), np.float32)
        pos = rng.normal(0, 0.1, joints).astype(np.float32)
        events = []
        for k, phase in enumerate(PHASES[0]):
            goal = rng.normal(0, 0.6, joints).astype(np.float32)
            for t in range(bounds[k], bounds[k + 1]):
                pos = pos + 0.3 * (goal - pos)
                state[t] = pos
            events.append(Event(bounds[k], bounds[k + 1], phase.format(obj=obj)))
        action = np.concatenate([state[1:], state[-1:]], axis=0)
        images = {}
        for c, cam in enumerate(cameras):
            frames = np.full((length, image_size, image_size, 3), 30 + 40 * c, np.uint8)
            for t in range(length):
                y = int(np.clip((state[t, 0] + 1.5) / 3 * (image_size - 4), 0, image_size - 4))
                x = int(np.clip((state[t, 1] + 1.5) / 3 * (image_size - 4), 0, image_size - 4))
                frames[t, y : y + 4, x : x + 4] = COLORS[obj]
            images[cam] = frames
        episodes.append(Episode(task, state, action, images, events))
    return episodes


def export_tiny_bundle(
    out_dir: str | Path, steps: int = 30, seed: int = 0, overrides: Sequence[str] = ()
) -> Path:
    """Train the tiny config briefly on synthetic episodes and export a 3-mode bundle;
    `overrides` are `--set` items (e.g. 'model.event_reads_instruction=false')."""
    from wallwm_train.config import load_config
    from wallwm_train.export import export_bundle
    from wallwm_train.train import fit_in_memory

    cfg = load_config('tiny', [f'train.steps={steps}', f'train.seed={seed}', *overrides])
    model, norm = fit_in_memory(cfg, synthetic_episodes(seed=seed))
    return export_bundle(model, cfg, norm, Path(out_dir), control_rate_hz=30.0)


def write_synthetic_dataset(
    root: str | Path, num_episodes: int = 6, seed: int = 0, image_size: int = 32
) -> Path:
    """The procedural episodes as a LeRobot dataset with events (wallwm_train.data)."""
    from wallwm_train.data.event import Event as DataEvent
    from wallwm_train.data.lerobot import LeRobotWriter

    episodes = synthetic_episodes(num_episodes, image_size=image_size, seed=seed)
    cameras = {cam: (image_size, image_size) for cam in episodes[0].images}
    with LeRobotWriter(
        Path(root), fps=30, joint_names=list(SO101_JOINTS), cameras=cameras, robot_type='so101'
    ) as writer:
        for ep in episodes:
            writer.add_episode(
                task=ep.task,
                state=ep.state,
                action=ep.action,
                images=ep.images,
                events=[DataEvent(e.start, e.end, e.caption) for e in ep.events],
            )
    return Path(root)
