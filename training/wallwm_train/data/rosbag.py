"""rosbag2 (mcap or sqlite3) -> LeRobot dataset, with `rosbags` (no ROS install needed).

Resampling policy, at the profile's control rate on a grid starting when every required topic has
published (late topics delay the start; the frames before are reported as dropped):
- images: the nearest EARLIER frame (never one from the future);
- joints: linear interpolation between the samples around each grid time;
- action: the first point of the latest JointTrajectory at or before the grid time; without an
  action topic (warning) the action is the next step's measured state.
- end-effector pose (optional, `tf_base_frame` and `tf_ee_frame` in the profile): the /tf and
  /tf_static chain from base to end effector, interpolated at the grid time (`data/tf.py`), as
  `observation.ee_pose` (x, y, z, qx, qy, qz, qw in the base frame).
Stamps: header stamps (the receive time when a header is zero); out-of-order messages are sorted,
duplicated stamps keep the first message. A grid time whose nearest earlier sample of any topic is
older than `max_gap_s` (for joints: that lies between samples more than `max_gap_s` apart) is
dropped and the episode is split there (each piece shorter than `min_episode_s` is dropped); the
report lists every drop.
"""

import csv
import io
import json
import warnings
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from wallwm_train.data.event import Event
from wallwm_train.data.lerobot import LeRobotWriter
from wallwm_train.data.segment import segment
from wallwm_train.data.tf import POSE_NAMES
from wallwm_train.data.tf import TF_MESSAGE
from wallwm_train.data.tf import TF_TOPICS
from wallwm_train.data.tf import TfTree

SIDECAR_SUFFIX = '.events.json'
JOINT_STATE = 'sensor_msgs/msg/JointState'
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
TRAJECTORY = 'trajectory_msgs/msg/JointTrajectory'
STAMP_TOL_S = 1e-6   # a stamp this close to a grid time counts as at it (ns rounding)
EE_POSE = 'observation.ee_pose'


@dataclass(frozen=True)
class Profile:
    joint_names: tuple[str, ...]
    cameras: dict[str, str]                 # camera name -> topic
    joint_topic: str = '/joint_states'
    action_topic: str = '/joint_trajectory_controller/joint_trajectory'
    fps: int = 30
    max_gap_s: float = 0.5
    min_episode_s: float = 0.5
    depth_max_m: float = 4.0                # 16UC1 depth (mm) maps [0, depth_max_m] to [0, 255]
    robot_type: str = 'so101'
    default_task: str = ''
    gripper_index: int = -1
    tf_base_frame: str = ''                 # both set: add the end-effector pose from /tf
    tf_ee_frame: str = ''

    @classmethod
    def load(cls, path: str | Path) -> 'Profile':
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'{path}: unknown profile keys {sorted(unknown)}')
        if 'joint_names' not in raw or 'cameras' not in raw:
            raise ValueError(f'{path}: a profile needs joint_names and cameras')
        raw['joint_names'] = tuple(raw['joint_names'])
        if bool(raw.get('tf_base_frame')) != bool(raw.get('tf_ee_frame')):
            raise ValueError(f'{path}: set both tf_base_frame and tf_ee_frame, or neither')
        return cls(**raw)

    @property
    def wants_ee_pose(self) -> bool:
        return bool(self.tf_base_frame and self.tf_ee_frame)


def builtin_profile(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / 'configs' / 'data' / f'{name}.yaml'


@dataclass
class Report:
    episodes: list[int] = field(default_factory=list)   # lengths written
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frames: int = 0

    def text(self) -> str:
        lines = [f'episodes: {len(self.episodes)} lengths {self.episodes}',
                 f'frames: {self.frames}']
        lines += [f'dropped: {d}' for d in self.dropped]
        lines += [f'warning: {w}' for w in self.warnings]
        return '\n'.join(lines)


def _stamp(msg, t_ns: int) -> float:
    header = getattr(msg, 'header', None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return t_ns * 1e-9


def _decode(msg, msgtype: str, depth_max_m: float, where: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage."""
    if msgtype == COMPRESSED:
        return np.asarray(Image.open(io.BytesIO(bytes(msg.data))).convert('RGB'))
    h, w, enc = msg.height, msg.width, msg.encoding
    data = np.asarray(msg.data, np.uint8)
    if enc in ('rgb8', 'bgr8'):
        img = data.reshape(h, msg.step)[:, :w * 3].reshape(h, w, 3)
        return img[..., ::-1].copy() if enc == 'bgr8' else img.copy()
    if enc == 'mono8':
        return np.repeat(data.reshape(h, msg.step)[:, :w, None], 3, axis=2)
    if enc == '16UC1':
        dtype = '>u2' if msg.is_bigendian else '<u2'
        depth = data.reshape(h, msg.step).view(dtype)[:, :w].astype(np.float32)
        scaled = np.clip(depth / (depth_max_m * 1000.0) * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(scaled[..., None], 3, axis=2)
    raise ValueError(f'{where}: unsupported image encoding {enc!r} '
                     '(rgb8, bgr8, mono8, 16UC1 or CompressedImage)')


def _sorted(samples: list, name: str, report: Report) -> list:
    samples.sort(key=lambda s: s[0])
    out, dups = [], 0
    for s in samples:
        if out and s[0] == out[-1][0]:
            dups += 1
            continue
        out.append(s)
    if dups:
        report.dropped.append(f'{name}: {dups} messages with duplicated stamps')
    return out


def _load_events(bag: Path, events: Path | None) -> list[dict] | None:
    path = events if events is not None else bag.with_name(bag.name + SIDECAR_SUFFIX)
    if not path.is_file():
        if events is not None:
            raise FileNotFoundError(f'{path}: events file not found')
        return None
    if path.suffix == '.csv':  # episode_start,episode_end,task,start_time,end_time,caption
        episodes: dict[tuple, dict] = {}
        with path.open() as f:
            for row in csv.DictReader(f):
                key = (float(row['episode_start']), float(row['episode_end']))
                ep = episodes.setdefault(key, {'start_time': key[0], 'end_time': key[1],
                                               'task': row.get('task', ''), 'events': []})
                ep['events'].append({'start_time': float(row['start_time']),
                                     'end_time': float(row['end_time']),
                                     'caption': row['caption']})
        return list(episodes.values())
    try:
        return json.loads(path.read_text())['episodes']
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f'{path}: not an events sidecar ({error})') from error


def convert(bag: str | Path, out: str | Path, profile: Profile, events: Path | None = None,
            progress: bool = False) -> Report:
    """Convert one rosbag2 folder into a new dataset at `out`; returns what was written/dropped."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    bag = Path(bag)
    report = Report()
    if not bag.exists():
        raise FileNotFoundError(f'{bag}: no such bag')
    try:
        return _convert(bag, out, profile, events, progress, report)
    except (AnyReaderError, ReaderError) as error:
        raise ValueError(f'{bag}: cannot read the bag ({error})') from error


def _convert(bag: Path, out, profile: Profile, events, progress: bool, report: Report) -> Report:
    from rosbags.highlevel import AnyReader
    from tqdm import tqdm

    joint_index = {n: i for i, n in enumerate(profile.joint_names)}
    js, act = [], []
    imgs: dict[str, list] = {cam: [] for cam in profile.cameras}
    topic_cam = {topic: cam for cam, topic in profile.cameras.items()}
    with AnyReader([bag]) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        for need in (profile.joint_topic, *profile.cameras.values()):
            if need not in topics:
                raise ValueError(f'{bag}: required topic {need!r} missing '
                                 f'(bag has {sorted(topics)})')
        for topic in topic_cam:
            if topics[topic] not in (IMAGE, COMPRESSED):
                raise ValueError(f'{bag}: {topic} is {topics[topic]}, not an image')
        tf_topics = [t for t in TF_TOPICS if topics.get(t) == TF_MESSAGE]
        if profile.wants_ee_pose and not tf_topics:
            raise ValueError(f'{bag}: the profile asks for the end-effector pose '
                             f'({profile.tf_base_frame} -> {profile.tf_ee_frame}) but the bag has '
                             'no /tf or /tf_static')
        tree = TfTree()
        has_action = profile.action_topic in topics
        if not has_action:
            report.warnings.append(f'no {profile.action_topic}: action = next measured state')
        wanted = [c for c in reader.connections
                  if c.topic in topic_cam or c.topic == profile.joint_topic
                  or (has_action and c.topic == profile.action_topic)
                  or (profile.wants_ee_pose and c.topic in tf_topics)]
        messages = reader.messages(connections=wanted)
        for conn, t_ns, raw in tqdm(messages, disable=not progress, desc='read', unit='msg'):
            if conn.topic in topic_cam:
                # decode the header only: pixels are decoded later for the frames kept
                msg = reader.deserialize(raw, conn.msgtype)
                imgs[topic_cam[conn.topic]].append((_stamp(msg, t_ns), msg, conn.msgtype))
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic in TF_TOPICS:
                for tf in msg.transforms:
                    tr, rot = tf.transform.translation, tf.transform.rotation
                    tree.add(tf.header.frame_id, tf.child_frame_id, _stamp(tf, t_ns),
                             (tr.x, tr.y, tr.z), (rot.x, rot.y, rot.z, rot.w),
                             static=conn.topic == '/tf_static')
            elif conn.topic == profile.joint_topic:
                names = list(msg.name)
                missing = [n for n in profile.joint_names if n not in names]
                if missing:
                    raise ValueError(f'{bag}: {conn.topic} at t={_stamp(msg, t_ns):.3f} lacks '
                                     f'joints {missing}')
                pos = np.asarray(msg.position, np.float64)
                js.append((_stamp(msg, t_ns), pos[[names.index(n) for n in joint_index]]))
            elif len(msg.points):
                names = list(msg.joint_names)
                missing = [n for n in profile.joint_names if n not in names]
                if missing:
                    raise ValueError(f'{bag}: {conn.topic} lacks joints {missing}')
                pos = np.asarray(msg.points[0].positions, np.float64)
                act.append((_stamp(msg, t_ns), pos[[names.index(n) for n in joint_index]]))
    js = _sorted(js, profile.joint_topic, report)
    act = _sorted(act, profile.action_topic, report)
    for cam in imgs:
        imgs[cam] = _sorted(imgs[cam], profile.cameras[cam], report)
        if not imgs[cam]:
            raise ValueError(f'{bag}: camera {cam} ({profile.cameras[cam]}) has no messages')
    if len(js) < 2:
        raise ValueError(f'{bag}: {profile.joint_topic} has {len(js)} messages (need 2)')

    sidecar = _load_events(bag, events)
    t0 = max([js[0][0], *(v[0][0] for v in imgs.values())] + ([act[0][0]] if act else []))
    t1 = min([js[-1][0], *(v[-1][0] for v in imgs.values())])
    if profile.wants_ee_pose:
        tf_from, tf_to = tree.span(profile.tf_base_frame, profile.tf_ee_frame)
        t0, t1 = max(t0, tf_from), min(t1, tf_to)
    spans = sidecar or [{'start_time': t0, 'end_time': t1, 'task': profile.default_task,
                         'events': None}]
    js_t = np.array([s[0] for s in js])
    js_q = np.stack([s[1] for s in js])                                  # (N, J)
    act_t = np.array([s[0] for s in act]) if act else None
    img_t = {cam: np.array([s[0] for s in v]) for cam, v in imgs.items()}
    dt = 1.0 / profile.fps
    writer = None
    for span in spans:
        start, end = max(span['start_time'], t0), min(span['end_time'], t1)
        if start > span['start_time'] + dt:
            late = start - span['start_time']
            report.dropped.append(f'episode at {span["start_time"]:.3f}: {late:.3f} s before '
                                  'every topic had published (late topic)')
        grid = start + np.arange(int(np.floor((end - start + STAMP_TOL_S) / dt)) + 1) * dt  # (T,)
        if len(grid) < 2:
            report.dropped.append(f'episode at {span["start_time"]:.3f}: no overlap of all topics')
            continue
        ok = np.ones(len(grid), bool)
        prev = np.searchsorted(js_t, grid + STAMP_TOL_S, 'right') - 1
        nxt = np.minimum(prev + 1, len(js_t) - 1)
        on_sample = np.abs(js_t[prev] - grid) <= STAMP_TOL_S
        # joints are interpolated only between samples at most max_gap_s apart
        ages = {profile.joint_topic: np.where(on_sample, 0.0, js_t[nxt] - js_t[prev])}
        picks = {}
        for cam, ts in img_t.items():
            k = np.searchsorted(ts, grid + STAMP_TOL_S, 'right') - 1
            picks[cam] = k
            ages[profile.cameras[cam]] = np.maximum(grid - ts[k], 0.0)
        if act_t is not None:
            k = np.searchsorted(act_t, grid + STAMP_TOL_S, 'right') - 1
            picks['_action'] = k
        for topic, age in ages.items():
            bad = age > profile.max_gap_s
            if bad.any():
                report.dropped.append(f'{topic}: {int(bad.sum())} steps from {grid[bad][0]:.3f}s '
                                      f'(gap over {profile.max_gap_s}s)')
            ok &= ~bad
        if profile.wants_ee_pose:  # interpolated across at most max_gap_s, like the joints
            ee_pose, spacing = tree.poses(profile.tf_base_frame, profile.tf_ee_frame, grid)
            bad = spacing > profile.max_gap_s
            if bad.any():
                report.dropped.append(f'/tf: {int(bad.sum())} steps from {grid[bad][0]:.3f}s '
                                      f'(gap over {profile.max_gap_s}s)')
            ok &= ~bad
        # contiguous runs of valid steps become episodes
        edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=False):
            if (b - a) < profile.min_episode_s * profile.fps:
                report.dropped.append(f'{b - a} steps at {grid[a]:.3f}s: piece shorter than '
                                      f'{profile.min_episode_s}s')
                continue
            g = grid[a:b]
            state = np.stack([np.interp(g, js_t, js_q[:, j]) for j in range(js_q.shape[1])], 1)
            if act_t is not None:
                action = np.stack([act[i][1] for i in picks['_action'][a:b]])
            else:
                action = np.concatenate([state[1:], state[-1:]])
            images = {}
            for cam in imgs:
                frames = [_decode(imgs[cam][i][1], imgs[cam][i][2], profile.depth_max_m,
                                  f'{profile.cameras[cam]} t={imgs[cam][i][0]:.3f}')
                          for i in picks[cam][a:b]]
                shapes = {f.shape for f in frames}
                if len(shapes) > 1:
                    raise ValueError(f'{profile.cameras[cam]}: image size changes '
                                     f'{sorted(shapes)}')
                images[cam] = np.stack(frames)
            task = span.get('task') or profile.default_task
            evs = []
            for e in span.get('events') or []:
                s = max(0, int(round((e['start_time'] - g[0]) * profile.fps)))
                f = min(len(g), int(round((e['end_time'] - g[0]) * profile.fps)))
                if f > s:
                    evs.append(Event(s, f, e['caption'], source='sidecar',
                                     imitate=e.get('imitate', True)))
                else:
                    report.dropped.append(f'event {e["caption"]!r}: outside the kept steps')
            if not evs:
                evs = segment(state, profile.fps, task, profile.gripper_index,
                              list(profile.joint_names))
            extra = {EE_POSE: ee_pose[a:b]} if profile.wants_ee_pose else {}
            if writer is None:
                cams = {cam: v.shape[1:3] for cam, v in images.items()}
                writer = LeRobotWriter(out, profile.fps, list(profile.joint_names), cams,
                                       profile.robot_type,
                                       {EE_POSE: POSE_NAMES} if extra else None)
            writer.add_episode(task, state.astype(np.float32), action.astype(np.float32),
                               images, evs, extra)
            report.episodes.append(len(g))
            report.frames += len(g) * len(images)
    if writer is None:
        raise ValueError(f'{bag}: nothing to write\n{report.text()}')
    writer.close()
    for w in report.warnings:
        warnings.warn(w, stacklevel=2)
    return report
