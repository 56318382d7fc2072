"""Datasets in the LeRobotDataset v3.0 layout (DESIGN.md §4), plus our events in
`meta/events.parquet`, so LeRobot users open them with `LeRobotDataset` unchanged.

Images are PNG bytes embedded in the parquet (LeRobot's `image` feature: a struct of `bytes` and
`path`). The writer builds the dataset in a temporary sibling folder and renames it into place on
`close()`: a conversion killed half-way leaves no folder that loads as a valid dataset.
"""

import json
import os
import shutil
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wallwm_train.data.event import Event

CODEBASE_VERSION = 'v3.0'
STATE = 'observation.state'
ACTION = 'action'
IMAGE_PREFIX = 'observation.images.'
DEFAULT_COLUMNS = ('timestamp', 'frame_index', 'episode_index', 'index', 'task_index')
DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
EPISODES_PATH = 'meta/episodes/chunk-000/file-000.parquet'
EVENTS_PATH = 'meta/events.parquet'
CHUNKS_SIZE = 1000
EPISODES_PER_FILE = 50
_IMAGE_TYPE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])


def _png(frame: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode('.png', cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError('PNG encoding failed')
    return buffer.tobytes()


def _unpng(data: bytes) -> np.ndarray:
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError('not a decodable PNG image')
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class LeRobotWriter:
    """Write episodes; `close()` (or leaving the `with` block) finalises the dataset."""

    def __init__(self, root: str | Path, fps: int, joint_names: list[str],
                 cameras: dict[str, tuple[int, int]], robot_type: str = 'so101',
                 extra_features: dict[str, list[str]] | None = None):
        """`extra_features`: further float32 vector observations per frame, e.g.
        {'observation.ee_pose': ['x', 'y', 'z', 'qx', 'qy', 'qz', 'qw']}."""
        self.root = Path(root)
        if self.root.exists():
            raise FileExistsError(f'{self.root} exists; the writer creates a new dataset')
        self.fps = int(fps)
        self.joint_names = list(joint_names)
        self.cameras = dict(cameras)
        self.robot_type = robot_type
        self.extra_features = dict(extra_features or {})
        self._tmp = self.root.with_name(f'.{self.root.name}.partial-{os.getpid()}')
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir(parents=True)
        self._tasks: dict[str, int] = {}
        self._pending: list[pa.Table] = []
        self._pending_episodes: list[int] = []
        self._episodes: list[dict] = []
        self._events: list[dict] = []
        self._file_index = 0
        self._frames = 0
        self._sums = {}
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:  # an error mid-way: nothing half-written is left behind
            shutil.rmtree(self._tmp, ignore_errors=True)

    def add_episode(self, task: str, state: np.ndarray, action: np.ndarray,
                    images: dict[str, np.ndarray], events: list[Event],
                    extra: dict[str, np.ndarray] | None = None) -> int:
        state = np.asarray(state, np.float32)
        extra = {k: np.asarray(v, np.float32) for k, v in (extra or {}).items()}
        action = np.asarray(action, np.float32)
        length, joints = state.shape
        if joints != len(self.joint_names) or action.shape != state.shape:
            raise ValueError(f'state {state.shape} and action {action.shape} must both be '
                             f'(T, {len(self.joint_names)})')
        if set(images) != set(self.cameras):
            raise ValueError(f'images for {sorted(images)}, dataset cameras '
                             f'{sorted(self.cameras)}')
        for cam, (h, w) in self.cameras.items():
            if images[cam].shape != (length, h, w, 3) or images[cam].dtype != np.uint8:
                raise ValueError(f'{cam}: images {images[cam].shape} {images[cam].dtype}, '
                                 f'expected ({length}, {h}, {w}, 3) uint8')
        if set(extra) != set(self.extra_features):
            raise ValueError(f'extra features {sorted(extra)}, dataset has '
                             f'{sorted(self.extra_features)}')
        for key, names in self.extra_features.items():
            if extra[key].shape != (length, len(names)):
                raise ValueError(f'{key}: {extra[key].shape}, expected ({length}, {len(names)})')
        for e in events:
            if e.end > length:
                raise ValueError(f'event {e.caption!r} ends at {e.end} > episode length {length}')
        episode = len(self._episodes)
        task_index = self._tasks.setdefault(task, len(self._tasks))
        frame = np.arange(length)
        columns = {
            STATE: pa.array(list(state), pa.list_(pa.float32(), joints)),
            ACTION: pa.array(list(action), pa.list_(pa.float32(), joints)),
        }
        for key, values in extra.items():
            columns[key] = pa.array(list(values), pa.list_(pa.float32(), values.shape[1]))
        for cam in self.cameras:
            columns[IMAGE_PREFIX + cam] = pa.array(
                [{'bytes': _png(f), 'path': None} for f in images[cam]], _IMAGE_TYPE)
        columns.update({
            'timestamp': pa.array((frame / self.fps).astype(np.float32)),
            'frame_index': pa.array(frame.astype(np.int64)),
            'episode_index': pa.array(np.full(length, episode, np.int64)),
            'index': pa.array(self._frames + frame.astype(np.int64)),
            'task_index': pa.array(np.full(length, task_index, np.int64)),
        })
        self._pending.append(pa.table(columns))
        self._pending_episodes.append(episode)
        self._episodes.append({'episode_index': episode, 'tasks': [task], 'length': length,
                               'dataset_from_index': self._frames,
                               'dataset_to_index': self._frames + length,
                               'data/chunk_index': 0, 'data/file_index': self._file_index})
        for e in events:
            self._events.append({'episode_index': episode, 'start': e.start, 'end': e.end,
                                 'caption': e.caption, 'level': e.level, 'source': e.source,
                                 'imitate': e.imitate})
        for key, values in ((STATE, state), (ACTION, action), *extra.items()):
            acc = self._sums.setdefault(key, [np.inf, -np.inf, 0.0, 0.0, 0])
            acc[0] = np.minimum(acc[0], values.min(0))
            acc[1] = np.maximum(acc[1], values.max(0))
            acc[2] = acc[2] + values.sum(0, dtype=np.float64)
            acc[3] = acc[3] + (values.astype(np.float64) ** 2).sum(0)
            acc[4] += length
        for cam in self.cameras:
            px = images[cam].reshape(-1, 3).astype(np.float64) / 255.0
            acc = self._sums.setdefault(IMAGE_PREFIX + cam, [np.inf, -np.inf, 0.0, 0.0, 0])
            acc[0] = np.minimum(acc[0], px.min(0))
            acc[1] = np.maximum(acc[1], px.max(0))
            acc[2] = acc[2] + px.sum(0)
            acc[3] = acc[3] + (px ** 2).sum(0)
            acc[4] += len(px)
        self._frames += length
        if len(self._pending) >= EPISODES_PER_FILE:
            self._flush()
        return episode

    def _flush(self) -> None:
        if not self._pending:
            return
        path = self._tmp / DATA_PATH.format(chunk_index=0, file_index=self._file_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self._pending), path)
        self._pending, self._pending_episodes = [], []
        self._file_index += 1

    def _features(self) -> dict:
        joints = len(self.joint_names)
        features = {
            STATE: {'dtype': 'float32', 'shape': [joints], 'names': self.joint_names},
            ACTION: {'dtype': 'float32', 'shape': [joints], 'names': self.joint_names},
        }
        for key, names in self.extra_features.items():
            features[key] = {'dtype': 'float32', 'shape': [len(names)], 'names': list(names)}
        for cam, (h, w) in self.cameras.items():
            features[IMAGE_PREFIX + cam] = {'dtype': 'image', 'shape': [h, w, 3],
                                            'names': ['height', 'width', 'channels']}
        features['timestamp'] = {'dtype': 'float32', 'shape': [1], 'names': None}
        for name in DEFAULT_COLUMNS[1:]:
            features[name] = {'dtype': 'int64', 'shape': [1], 'names': None}
        return features

    def close(self) -> Path:
        if self._closed:
            return self.root
        self._flush()
        meta = self._tmp / 'meta'
        (meta / 'episodes' / 'chunk-000').mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self._episodes), self._tmp / EPISODES_PATH)
        tasks = pd.DataFrame({'task_index': list(self._tasks.values())},
                             index=pd.Index(list(self._tasks), name='task'))
        tasks.to_parquet(meta / 'tasks.parquet')  # indexed by the task string, as LeRobot reads it
        events = pa.Table.from_pylist(self._events, schema=pa.schema([
            ('episode_index', pa.int64()), ('start', pa.int64()), ('end', pa.int64()),
            ('caption', pa.string()), ('level', pa.string()), ('source', pa.string()),
            ('imitate', pa.bool_())]))
        pq.write_table(events, self._tmp / EVENTS_PATH)
        stats = {}
        for key, (lo, hi, s, sq, n) in self._sums.items():
            mean = s / max(n, 1)
            std = np.sqrt(np.maximum(sq / max(n, 1) - mean ** 2, 0.0))
            shape = (lambda v: [[[float(x)]] for x in v]) if key.startswith(IMAGE_PREFIX) else (
                lambda v: [float(x) for x in v])
            stats[key] = {'min': shape(lo), 'max': shape(hi), 'mean': shape(mean),
                          'std': shape(std), 'count': [int(n)]}
        (meta / 'stats.json').write_text(json.dumps(stats, indent=2))
        info = {
            'codebase_version': CODEBASE_VERSION, 'robot_type': self.robot_type,
            'total_episodes': len(self._episodes), 'total_frames': self._frames,
            'total_tasks': len(self._tasks), 'chunks_size': CHUNKS_SIZE,
            'data_files_size_in_mb': 100, 'video_files_size_in_mb': 500, 'fps': self.fps,
            'splits': {'train': f'0:{len(self._episodes)}'}, 'data_path': DATA_PATH,
            'video_path': None, 'features': self._features(),
        }
        (meta / 'info.json').write_text(json.dumps(info, indent=2))
        os.replace(self._tmp, self.root)  # atomic: the dataset appears complete or not at all
        self._closed = True
        return self.root


@dataclass
class Episode:
    task: str
    state: np.ndarray                  # (T, J) float32
    action: np.ndarray                 # (T, J) float32
    images: dict[str, np.ndarray]      # camera -> (T, H, W, 3) uint8 RGB
    events: list[Event] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. observation.ee_pose (T, 7)


class LeRobotDataset:
    """Read-only access to a dataset written by `LeRobotWriter` (or any v3.0 image dataset with
    our events table)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        info_path = self.root / 'meta' / 'info.json'
        if not info_path.is_file():
            raise FileNotFoundError(f'{self.root}: not a LeRobot dataset (no meta/info.json)')
        self.info = json.loads(info_path.read_text())
        if self.info.get('codebase_version') != CODEBASE_VERSION:
            raise ValueError(f'{info_path}: codebase_version {self.info.get("codebase_version")!r}'
                             f', expected {CODEBASE_VERSION!r}')
        self.fps = int(self.info['fps'])
        features = self.info['features']
        self.joint_names = list(features[STATE]['names'])
        self.camera_names = [k[len(IMAGE_PREFIX):] for k in features if k.startswith(IMAGE_PREFIX)]
        self.extra_features = [k for k, f in features.items() if f['dtype'] == 'float32'
                               and k not in (STATE, ACTION, 'timestamp')]
        self._episodes = pq.read_table(self.root / EPISODES_PATH).to_pylist()
        self.num_episodes = len(self._episodes)
        events_path = self.root / EVENTS_PATH
        rows = pq.read_table(events_path).to_pylist() if events_path.is_file() else []
        # Datasets written before the imitate column have only demonstrated events.
        self.events = [(r['episode_index'], Event(r['start'], r['end'], r['caption'], r['level'],
                                                  r['source'], r.get('imitate', True)))
                       for r in rows]
        self._files: dict[int, pa.Table] = {}

    def _file(self, file_index: int) -> pa.Table:
        if file_index not in self._files:
            self._files = {file_index: pq.read_table(
                self.root / self.info['data_path'].format(chunk_index=0, file_index=file_index))}
        return self._files[file_index]

    def episode_actions(self, i: int) -> np.ndarray:
        """(T, J) actions of episode i, without decoding its images."""
        meta = self._episodes[i]
        table = self._file(meta['data/file_index']).select(['episode_index', ACTION])
        rows = table.filter(pc.equal(table['episode_index'], i))
        return np.asarray(rows[ACTION].to_pylist(), np.float32)

    def episode(self, i: int) -> Episode:
        meta = self._episodes[i]
        table = self._file(meta['data/file_index'])
        rows = table.filter(pc.equal(table['episode_index'], i))
        state = np.asarray(rows[STATE].to_pylist(), np.float32)
        action = np.asarray(rows[ACTION].to_pylist(), np.float32)
        images = {cam: np.stack([_unpng(v['bytes']) for v in rows[IMAGE_PREFIX + cam].to_pylist()])
                  for cam in self.camera_names}
        events = [e for ep, e in self.events if ep == i]
        extra = {key: np.asarray(rows[key].to_pylist(), np.float32) for key in self.extra_features}
        return Episode(meta['tasks'][0], state, action, images, events, extra)


def validate(root: str | Path) -> list[str]:
    """Every problem found, each with its location; an empty list means the dataset is valid."""
    root = Path(root)
    problems = []
    try:
        ds = LeRobotDataset(root)
    except (FileNotFoundError, ValueError, KeyError, OSError) as error:
        return [str(error)]
    info = ds.info
    for key in ('fps', 'total_episodes', 'total_frames', 'total_tasks', 'chunks_size',
                'data_path', 'features'):
        if key not in info:
            problems.append(f'meta/info.json: missing {key}')
    for col in DEFAULT_COLUMNS:
        if col not in info['features']:
            problems.append(f'meta/info.json: features lacks default column {col}')
    expected_columns = set(info['features'])
    files = sorted((root / 'data').rglob('*.parquet'))
    index = 0
    for path in files:
        try:
            table = pq.read_table(path)
        except Exception as error:  # noqa: BLE001 -- report any unreadable file
            problems.append(f'{path.relative_to(root)}: unreadable: {error}')
            continue
        if set(table.column_names) != expected_columns:
            problems.append(f'{path.relative_to(root)}: columns {sorted(table.column_names)} != '
                            f'features {sorted(expected_columns)}')
            continue
        idx = np.asarray(table['index'])
        if not np.array_equal(idx, np.arange(index, index + len(idx))):
            problems.append(f'{path.relative_to(root)}: index not contiguous from {index}')
        fi = np.asarray(table['frame_index'])
        ts = np.asarray(table['timestamp'])
        if not np.allclose(ts, fi / ds.fps, atol=1e-4):
            problems.append(f'{path.relative_to(root)}: timestamp != frame_index / fps')
        index += len(idx)
    if index != info.get('total_frames'):
        problems.append(f'meta/info.json: total_frames {info.get("total_frames")} but the data '
                        f'files hold {index} rows')
    lengths = {e['episode_index']: e['length'] for e in ds._episodes}
    if len(lengths) != info.get('total_episodes'):
        problems.append(f'{EPISODES_PATH}: {len(lengths)} episodes, info says '
                        f'{info.get("total_episodes")}')
    for n, (ep, event) in enumerate(ds.events):
        if ep not in lengths:
            problems.append(f'{EVENTS_PATH} row {n}: episode {ep} does not exist')
        elif event.end > lengths[ep]:
            problems.append(f'{EVENTS_PATH} row {n}: event ends at {event.end} after episode '
                            f'{ep} (length {lengths[ep]})')
    for name in ('tasks.parquet', 'stats.json'):
        if not (root / 'meta' / name).is_file():
            problems.append(f'meta/{name}: missing')
    return problems
