"""Expert demonstrations from the MuJoCo tabletop, generated in parallel (one process per core).

Each episode is one scripted-expert rollout (`wallwm_sim.env.expert.run_expert`): instruction,
joint states, actions, camera images and the expert's narrated events with their true steps. The
episodes go to a LeRobotDataset (`wallwm_train.data.lerobot.LeRobotWriter`) and, optionally, to a
rosbag2 (mcap) recording of the same episodes with its events sidecar (docs/contracts.md), so the
rosbag path of the data pipeline is exercised on real files.

Episode j of the first round uses seed `seed + j` and family `families[j % len(families)]`; the
expert's failures (a few percent) are dropped and replaced by a further round with new seeds, so
the dataset is the same for any number of workers.

    wallwm-generate --out data/sim --episodes 200 --bag data/sim_bag
"""

import argparse
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Headless rendering, and nothing written under the home directory (DESIGN.md §3). Set before
# MuJoCo is imported; a user's explicit choice wins.
os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('MESA_SHADER_CACHE_DISABLE', 'true')

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from wallwm_sim.env.expert import run_expert  # noqa: E402
from wallwm_sim.env.scene import CAMERA_NAMES  # noqa: E402
from wallwm_sim.env.scene import JOINT_NAMES  # noqa: E402
from wallwm_sim.env.scene import SceneConfig  # noqa: E402
from wallwm_sim.env.tabletop_env import TabletopEnv  # noqa: E402
from wallwm_sim.env.tasks import SPLITS  # noqa: E402
from wallwm_sim.env.tasks import TASK_FAMILIES  # noqa: E402

ROBOT_TYPE = 'so101'
# Seeds of retry round r start at seed + r * RETRY_SEED_STRIDE: far from the first round's seeds.
RETRY_SEED_STRIDE = 1_000_000
EPISODE_GAP_S = 1.0  # idle simulated time between episodes in the rosbag timeline

# Topics of a robot recording (docs/contracts.md, data profile `so101_sim`).
TOPIC_JOINT_STATES = '/joint_states'
TOPIC_COMMAND = '/joint_trajectory_controller/joint_trajectory'
TOPIC_CLOCK = '/clock'
CAMERA_TOPIC = '/camera/{}/image_raw'
MSG_JOINT_STATE = 'sensor_msgs/msg/JointState'
MSG_IMAGE = 'sensor_msgs/msg/Image'
MSG_TRAJECTORY = 'trajectory_msgs/msg/JointTrajectory'
MSG_CLOCK = 'rosgraph_msgs/msg/Clock'
EVENTS_SIDECAR_SUFFIX = '.events.json'


@dataclass(frozen=True)
class GenerateConfig:
    episodes: int  # successful episodes to write
    families: tuple[str, ...] = tuple(sorted(TASK_FAMILIES))
    seed: int = 0
    split: str = 'train'  # instruction paraphrases: train or heldout
    image_size: int = 128  # square camera images [px]
    cameras: tuple[str, ...] = CAMERA_NAMES
    workers: int = 0  # 0: one per available core
    max_rounds: int = 5  # retry rounds for the expert's failures
    approach_noise: float = 0.0  # fraction of approach events the expert aims off (imitate=False)
    gap_centred_grasp: bool = False  # lower the open jaws with the object mid-gap (expert.py)

    def __post_init__(self):
        if self.episodes < 1:
            raise ValueError(f'episodes must be >= 1, got {self.episodes}')
        unknown = sorted(set(self.families) - set(TASK_FAMILIES))
        if unknown or not self.families:
            raise ValueError(
                f'unknown task families {unknown}; available: {sorted(TASK_FAMILIES)}'
            )
        if self.split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {self.split!r}')
        if self.image_size < 16:
            raise ValueError(f'image_size must be >= 16 px, got {self.image_size}')
        if self.workers < 0 or self.max_rounds < 1:
            raise ValueError('workers must be >= 0 and max_rounds >= 1')
        if not 0.0 <= self.approach_noise <= 1.0:
            raise ValueError(f'approach_noise must be in [0, 1], got {self.approach_noise}')
        SceneConfig(cameras=self.cameras)  # checks the camera names

    @property
    def num_workers(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))

    @property
    def scene(self) -> SceneConfig:
        return SceneConfig(
            image_height=self.image_size, image_width=self.image_size, cameras=self.cameras
        )


@dataclass(frozen=True)
class ExpertEpisode:
    seed: int
    family: str
    task: str  # the instruction
    state: np.ndarray  # (T, J) float32
    action: np.ndarray  # (T, J) float32
    images: dict[str, np.ndarray]  # camera -> (T, H, W, 3) uint8
    events: tuple  # NarratedEvent(caption, start, end), contiguous over [0, T)
    success: bool


# --------------------------------------------------------------------------- workers
class _Worker:
    """One simulator per worker process, built on first use (MuJoCo models do not pickle)."""

    env: TabletopEnv | None = None

    @classmethod
    def run(cls, job: tuple[SceneConfig, str, int, str, float, bool]) -> ExpertEpisode:
        scene, split, seed, family, approach_noise, gap_centred_grasp = job
        if cls.env is None or cls.env.config != scene:
            cls.env = TabletopEnv(scene)
        states, actions, images, events, success = run_expert(
            cls.env,
            seed,
            family,
            split,
            approach_noise=approach_noise,
            gap_centred_grasp=gap_centred_grasp,
        )
        return ExpertEpisode(
            seed, family, cls.env.instruction, states, actions, images, tuple(events), success
        )


def _round_jobs(config: GenerateConfig, round_index: int, count: int) -> list:
    base = config.seed + round_index * RETRY_SEED_STRIDE
    return [
        (
            config.scene,
            config.split,
            base + j,
            config.families[j % len(config.families)],
            config.approach_noise,
            config.gap_centred_grasp,
        )
        for j in range(count)
    ]


def generate_episodes(config: GenerateConfig, progress: bool = True) -> Iterator[ExpertEpisode]:
    """Yields `config.episodes` successful expert episodes in a deterministic order."""
    remaining = config.episodes
    context = multiprocessing.get_context('spawn')  # a fresh MuJoCo/EGL state per worker
    with (
        context.Pool(config.num_workers) as pool,
        tqdm(total=config.episodes, desc='episodes', unit='ep', disable=not progress) as bar,
    ):
        for round_index in range(config.max_rounds):
            failed = 0
            jobs = _round_jobs(config, round_index, remaining)
            for episode in pool.imap(_Worker.run, jobs):
                if not episode.success:
                    failed += 1
                    continue
                remaining -= 1
                bar.update(1)
                yield episode
            if remaining == 0:
                return
            bar.write(
                f'round {round_index}: the expert failed {failed} of {len(jobs)} episodes;'
                ' retrying with new seeds'
            )
    raise RuntimeError(
        f'the expert failed too often: {remaining} episodes still missing after '
        f'{config.max_rounds} rounds'
    )


# --------------------------------------------------------------------------- writers
def _event_list(episode: ExpertEpisode) -> list:
    from wallwm_train.data.event import Event

    return [
        Event(e.start, e.end, e.caption, level='event', source='expert', imitate=e.imitate)
        for e in episode.events
    ]


class BagWriter:
    """Writes episodes to a rosbag2 (mcap) on one simulated timeline, plus the events sidecar.

    Per control step k of an episode starting at t0: joint states and images stamped
    t0 + k / fps, and the commanded action as a one-point JointTrajectory at the same time, so
    "the action at t is the first point of the latest command at or before t" reads it back.
    """

    def __init__(self, path: Path, fps: float, cameras: tuple[str, ...]):
        from rosbags.rosbag2 import StoragePlugin
        from rosbags.rosbag2 import Writer
        from rosbags.typesys import Stores
        from rosbags.typesys import get_typestore

        self.path = Path(path)
        self.fps = fps
        self.store = get_typestore(Stores.ROS2_KILTED)
        self.writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections = {
            TOPIC_JOINT_STATES: self.writer.add_connection(
                TOPIC_JOINT_STATES, MSG_JOINT_STATE, typestore=self.store
            ),
            TOPIC_COMMAND: self.writer.add_connection(
                TOPIC_COMMAND, MSG_TRAJECTORY, typestore=self.store
            ),
            TOPIC_CLOCK: self.writer.add_connection(TOPIC_CLOCK, MSG_CLOCK, typestore=self.store),
            **{
                cam: self.writer.add_connection(
                    CAMERA_TOPIC.format(cam), MSG_IMAGE, typestore=self.store
                )
                for cam in cameras
            },
        }
        self.cameras = cameras
        self.time = EPISODE_GAP_S  # simulated seconds where the next episode starts (0 = unset)
        self.sidecar = {'episodes': []}

    def _write(self, key: str, t: float, msg, msgtype: str) -> None:
        self.writer.write(
            self.connections[key], int(round(t * 1e9)), self.store.serialize_cdr(msg, msgtype)
        )

    def _stamp(self, t: float):
        Time = self.store.types['builtin_interfaces/msg/Time']  # noqa: N806
        sec = int(t)
        return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)

    def add_episode(self, episode: ExpertEpisode) -> None:
        types = self.store.types
        Header = types['std_msgs/msg/Header']  # noqa: N806
        JointState = types[MSG_JOINT_STATE]  # noqa: N806
        Image = types[MSG_IMAGE]  # noqa: N806
        JointTrajectory = types[MSG_TRAJECTORY]  # noqa: N806
        Point = types['trajectory_msgs/msg/JointTrajectoryPoint']  # noqa: N806
        Duration = types['builtin_interfaces/msg/Duration']  # noqa: N806
        Clock = types[MSG_CLOCK]  # noqa: N806
        names = list(JOINT_NAMES)
        empty = np.zeros(0, dtype=np.float64)
        period = 1.0 / self.fps
        t0 = self.time
        for k in range(len(episode.action)):
            t = t0 + k * period
            stamp = self._stamp(t)
            self._write(TOPIC_CLOCK, t, Clock(clock=stamp), MSG_CLOCK)
            self._write(
                TOPIC_JOINT_STATES,
                t,
                JointState(
                    header=Header(stamp=stamp, frame_id=''),
                    name=names,
                    position=episode.state[k].astype(np.float64),
                    velocity=empty,
                    effort=empty,
                ),
                MSG_JOINT_STATE,
            )
            for cam in self.cameras:
                image = episode.images[cam][k]
                self._write(
                    cam,
                    t,
                    Image(
                        header=Header(stamp=stamp, frame_id=f'{cam}_camera'),
                        height=image.shape[0],
                        width=image.shape[1],
                        encoding='rgb8',
                        is_bigendian=0,
                        step=image.shape[1] * 3,
                        data=np.ascontiguousarray(image).reshape(-1),
                    ),
                    MSG_IMAGE,
                )
            point = Point(
                positions=episode.action[k].astype(np.float64),
                velocities=empty,
                accelerations=empty,
                effort=empty,
                time_from_start=Duration(sec=0, nanosec=int(round(period * 1e9))),
            )
            self._write(
                TOPIC_COMMAND,
                t,
                JointTrajectory(
                    header=Header(stamp=stamp, frame_id=''), joint_names=names, points=[point]
                ),
                MSG_TRAJECTORY,
            )
        end = t0 + len(episode.action) * period
        self.sidecar['episodes'].append(
            {
                'start_time': t0,
                'end_time': end,
                'task': episode.task,
                'events': [
                    {
                        'start_time': t0 + e.start * period,
                        'end_time': t0 + e.end * period,
                        'caption': e.caption,
                        **({} if e.imitate else {'imitate': False}),
                    }
                    for e in episode.events
                ],
            }
        )
        self.time = end + EPISODE_GAP_S

    @property
    def sidecar_path(self) -> Path:
        return self.path.with_name(self.path.name + EVENTS_SIDECAR_SUFFIX)

    def close(self) -> None:
        self.writer.close()
        self.sidecar_path.write_text(json.dumps(self.sidecar, indent=1))


def generate(
    config: GenerateConfig, out: Path | None, bag: Path | None = None, progress: bool = True
) -> dict:
    """Writes the dataset to `out` and/or the rosbag to `bag`. Returns a small summary."""
    if out is None and bag is None:
        raise ValueError('nothing to write: give a dataset folder, a bag path or both')
    for path in (out, bag):
        if path is not None and Path(path).exists():
            raise FileExistsError(f'{path} exists; choose a new path')
    fps = int(config.scene.control_rate_hz)
    writer = bag_writer = None
    if out is not None:
        from wallwm_train.data.lerobot import LeRobotWriter

        size = (config.image_size, config.image_size)
        writer = LeRobotWriter(
            Path(out),
            fps=fps,
            joint_names=list(JOINT_NAMES),
            cameras={cam: size for cam in config.cameras},
            robot_type=ROBOT_TYPE,
        )
        writer.__enter__()
    if bag is not None:
        bag_writer = BagWriter(Path(bag), fps, config.cameras)
    summary = {'episodes': 0, 'frames': 0, 'events': 0, 'families': {}}
    try:
        for episode in generate_episodes(config, progress):
            if writer is not None:
                writer.add_episode(
                    task=episode.task,
                    state=episode.state,
                    action=episode.action,
                    images=episode.images,
                    events=_event_list(episode),
                )
            if bag_writer is not None:
                bag_writer.add_episode(episode)
            summary['episodes'] += 1
            summary['frames'] += len(episode.action)
            summary['events'] += len(episode.events)
            summary['families'][episode.family] = summary['families'].get(episode.family, 0) + 1
    finally:
        if writer is not None:
            writer.__exit__(None, None, None)
        if bag_writer is not None:
            bag_writer.close()
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--out', type=Path, help='LeRobotDataset folder to create')
    parser.add_argument(
        '--bag',
        type=Path,
        help='rosbag2 (mcap) folder to create, with a '
        f'<bag>{EVENTS_SIDECAR_SUFFIX} events sidecar next to it',
    )
    parser.add_argument('--episodes', type=int, default=100)
    parser.add_argument(
        '--families', nargs='+', default=sorted(TASK_FAMILIES), choices=sorted(TASK_FAMILIES)
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='train',
        help='instruction paraphrases (heldout: the ones training never sees)',
    )
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--cameras', nargs='+', default=list(CAMERA_NAMES), choices=CAMERA_NAMES)
    parser.add_argument('--workers', type=int, default=0, help='processes (0: one per core)')
    parser.add_argument(
        '--approach-noise',
        type=float,
        default=0.0,
        help='fraction of reaches the expert aims 1-4 cm off target, for the next event to '
        'correct (noise injection; those reaches are kept out of the action loss)',
    )
    parser.add_argument(
        '--gap-centred-grasp',
        action='store_true',
        help='lower the open jaws with the object in the middle of their gap, so a grasp that '
        'ends off along the jaws still comes down beside it (training/README.md, "Jaw clearance")',
    )
    args = parser.parse_args(argv)
    if args.out is None and args.bag is None:
        parser.error('give --out, --bag or both')
    try:
        config = GenerateConfig(
            episodes=args.episodes,
            families=tuple(args.families),
            seed=args.seed,
            split=args.split,
            image_size=args.image_size,
            cameras=tuple(args.cameras),
            workers=args.workers,
            approach_noise=args.approach_noise,
            gap_centred_grasp=args.gap_centred_grasp,
        )
        summary = generate(config, args.out, args.bag)
    except (ValueError, FileExistsError, RuntimeError) as error:
        parser.exit(2, f'wallwm-generate: error: {error}\n')
    print(json.dumps(summary))


if __name__ == '__main__':
    main()
