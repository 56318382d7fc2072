"""End-effector pose from a bag's /tf and /tf_static: the base -> end-effector transform at any
time, composed along the frame tree.

Dynamic transforms are interpolated between their samples (translation linearly, rotation by
spherical interpolation); static ones hold for all time. Quaternion maths is `transforms3d`'s
(w, x, y, z); poses come out in ROS order: x, y, z, qx, qy, qz, qw (the base frame's axes).
"""

from dataclasses import dataclass
from dataclasses import field

import numpy as np
from transforms3d.quaternions import qinverse
from transforms3d.quaternions import qmult
from transforms3d.quaternions import qpow
from transforms3d.quaternions import rotate_vector

TF_TOPICS = ('/tf', '/tf_static')
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
POSE_NAMES = ['x', 'y', 'z', 'qx', 'qy', 'qz', 'qw']


@dataclass
class _Edge:
    parent: str
    times: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # (w, x, y, z)
    static: bool = False


def _compose(a, b):
    """(t, q) of frame a applied after b: p_parent = a(b(p))."""
    return a[0] + rotate_vector(b[0], a[1]), qmult(a[1], b[1])


def _slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    if np.dot(q0, q1) < 0:  # the short way round
        q1 = -q1
    return qmult(q0, qpow(qmult(qinverse(q0), q1), s))


class TfTree:
    """Transforms keyed by child frame (a tf tree gives each frame one parent)."""

    def __init__(self):
        self.edges: dict[str, _Edge] = {}
        self._sorted = True  # dynamic samples in time order (bags need not deliver them so)

    def add(self, parent: str, child: str, stamp: float, translation, rotation_xyzw,
            static: bool) -> None:
        parent, child = parent.lstrip('/'), child.lstrip('/')
        edge = self.edges.setdefault(child, _Edge(parent, static=static))
        if edge.parent != parent or edge.static != static:
            raise ValueError(f'tf: frame {child!r} is published under {edge.parent!r} '
                             f'({"static" if edge.static else "dynamic"}) and under {parent!r} '
                             f'({"static" if static else "dynamic"})')
        x, y, z, w = rotation_xyzw
        rotation = np.array([w, x, y, z], np.float64) / np.linalg.norm([w, x, y, z])
        translation = np.asarray(translation, np.float64)
        if static:  # the latest static transform wins, as in tf2
            edge.times, edge.translations, edge.rotations = [stamp], [translation], [rotation]
        else:
            edge.times.append(stamp)
            edge.translations.append(translation)
            edge.rotations.append(rotation)
            self._sorted = False

    def _sort(self) -> None:
        if self._sorted:
            return
        for e in self.edges.values():
            order = np.argsort(e.times, kind='stable')
            e.times = [e.times[i] for i in order]
            e.translations = [e.translations[i] for i in order]
            e.rotations = [e.rotations[i] for i in order]
        self._sorted = True

    def _path(self, frame: str) -> list[str]:
        """Frames from `frame` up to the root (the frame itself first)."""
        path = [frame]
        while path[-1] in self.edges:
            path.append(self.edges[path[-1]].parent)
            if len(path) > len(self.edges) + 1:
                raise ValueError(f'tf: the frames above {frame!r} form a loop')
        return path

    def chain(self, base: str, ee: str) -> tuple[list[str], list[str]]:
        """Child frames of the edges from the common ancestor down to base and down to ee."""
        base, ee = base.lstrip('/'), ee.lstrip('/')
        up_base, up_ee = self._path(base), self._path(ee)
        common = next((f for f in up_ee if f in up_base), None)
        if common is None:
            known = sorted({*self.edges, *(e.parent for e in self.edges.values())})
            raise ValueError(f'tf: no transform chain connects {base!r} and {ee!r} '
                             f'(frames in the bag: {known})')
        return up_base[:up_base.index(common)], up_ee[:up_ee.index(common)]

    def span(self, base: str, ee: str) -> tuple[float, float]:
        """Time range in which every dynamic edge of the chain has samples on both sides."""
        edges = [self.edges[c] for side in self.chain(base, ee) for c in side]
        dynamic = [e for e in edges if not e.static]
        if not dynamic:
            return -np.inf, np.inf
        self._sort()
        return max(e.times[0] for e in dynamic), min(e.times[-1] for e in dynamic)

    def _at(self, child: str, t: float) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """(translation, rotation) of the edge above `child` at t, and the sample spacing that
        the value was interpolated across (0 for static edges and exact samples)."""
        e = self.edges[child]
        if e.static:
            return (e.translations[0], e.rotations[0]), 0.0
        times = e.times
        k = int(np.clip(np.searchsorted(times, t, 'right') - 1, 0, len(times) - 1))
        if k == len(times) - 1 or abs(times[k] - t) < 1e-9:
            return (e.translations[k], e.rotations[k]), 0.0
        s = (t - times[k]) / (times[k + 1] - times[k])
        translation = (1 - s) * e.translations[k] + s * e.translations[k + 1]
        rotation = _slerp(e.rotations[k], e.rotations[k + 1], s)
        return (translation, rotation), times[k + 1] - times[k]

    def poses(self, base: str, ee: str, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, 7) poses of ee in base (x, y, z, qx, qy, qz, qw) and (T,) the largest sample
        spacing interpolated across at each time (for gap checks)."""
        to_base, to_ee = self.chain(base, ee)
        self._sort()
        poses = np.zeros((len(times), 7))
        spacing = np.zeros(len(times))
        identity = (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
        for i, t in enumerate(times):
            root_ee, root_base = identity, identity
            for child in reversed(to_ee):      # from the common ancestor downwards
                edge, gap = self._at(child, t)
                root_ee, spacing[i] = _compose(root_ee, edge), max(spacing[i], gap)
            for child in reversed(to_base):
                edge, gap = self._at(child, t)
                root_base, spacing[i] = _compose(root_base, edge), max(spacing[i], gap)
            inverse = qinverse(root_base[1])
            translation = rotate_vector(root_ee[0] - root_base[0], inverse)
            w, x, y, z = qmult(inverse, root_ee[1])
            poses[i] = [*translation, x, y, z, w] if w >= 0 else [*translation, -x, -y, -z, -w]
        return poses, spacing
