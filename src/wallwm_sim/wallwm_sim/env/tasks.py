"""Task families: layouts, instructions (train and held-out paraphrases), success, expert plans.

Four families, two of them long-horizon:
- `pick_place`: put an object on a coloured pad (5 events);
- `stack`: put one cube on another (5 events);
- `bin_ordered`: put two objects in the bin in the stated order (10 events);
- `push`: push a cube 10 cm to the robot's left or right (4 events).
"Left" and "right" are the robot's: it faces +x, so its left is +y.

An expert plan is a list of events; each event is a caption plus moves whose targets are computed
from the scene when the move starts (so the expert reacts to where objects really are).
"""

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from wallwm_sim.env.scene import BIN_HALF
from wallwm_sim.env.scene import BIN_WALL_HEIGHT
from wallwm_sim.env.scene import CUBE_HALF
from wallwm_sim.env.scene import CYLINDER_HALF_HEIGHT
from wallwm_sim.env.scene import NUM_CUBES
from wallwm_sim.env.scene import NUM_CYLINDERS
from wallwm_sim.env.scene import PAD_HALF

COLORS = {
    'red': (0.85, 0.12, 0.1, 1.0),
    'green': (0.12, 0.68, 0.2, 1.0),
    'blue': (0.12, 0.28, 0.88, 1.0),
    'yellow': (0.92, 0.82, 0.12, 1.0),
    'purple': (0.55, 0.2, 0.72, 1.0),
    'white': (0.92, 0.92, 0.92, 1.0),
}
SPLITS = ('train', 'heldout')
WORKSPACE = ((0.15, 0.29), (-0.11, 0.11))  # (x range, y range) of object centres [m]
TRAVEL_Z = 0.10  # grasp-point height for moving between objects [m]
PUSH_DISTANCE = 0.10  # [m]
PUSH_CLEARANCE = 0.08  # [m] distractors' x beyond the pushed object's
# Pads above the object centre: the closing jaw then presses it into the table instead of
# wedging it up and out of the grasp.
GRASP_ABOVE_CENTER = 0.008  # [m]
WORLD_Y = np.array([0.0, 1.0, 0.0])
RETREAT_ABOVE_RELEASE = 0.07  # [m] grasp-point height above the release height after letting go
MAX_REACH = 0.275  # [m] object centres farther from the base than this are not grasped reliably

INSTRUCTIONS = {
    'pick_place': {
        'train': [
            'put the {obj} on the {pad} pad',
            'place the {obj} onto the {pad} pad',
            'move the {obj} to the {pad} pad',
            'pick up the {obj} and put it on the {pad} pad',
        ],
        'heldout': [
            'set the {obj} down on the {pad} pad',
            'transfer the {obj} to the {pad} square',
        ],
    },
    'stack': {
        'train': [
            'stack the {a} on the {b}',
            'put the {a} on top of the {b}',
            'place the {a} onto the {b}',
        ],
        'heldout': ['build a tower with the {a} on the {b}', 'set the {a} on top of the {b}'],
    },
    'bin_ordered': {
        'train': [
            'put the {a} in the bin, then the {b}',
            'first put the {a} in the bin, then the {b}',
            'drop the {a} into the bin and after that the {b}',
        ],
        'heldout': [
            'place the {a} and then the {b} in the bin',
            'the {a} goes in the bin first, then the {b}',
        ],
    },
    'push': {
        'train': [
            'push the {obj} to the {dir}',
            'slide the {obj} to the {dir}',
            'nudge the {obj} toward the {dir}',
        ],
        'heldout': ['shove the {obj} to the {dir}', 'move the {obj} to the {dir} by pushing it'],
    },
}


@dataclass(frozen=True)
class ObjectSpec:
    body: str  # MuJoCo body (and geom) name, e.g. 'cube_0'
    kind: str  # 'cube' or 'cylinder'
    color: str
    xy: tuple[float, float]
    yaw: float = 0.0

    @property
    def name(self) -> str:
        return f'{self.color} {self.kind}'

    @property
    def rgba(self):
        return COLORS[self.color]

    @property
    def half_height(self) -> float:
        return CUBE_HALF if self.kind == 'cube' else CYLINDER_HALF_HEIGHT


@dataclass(frozen=True)
class PadSpec:
    body: str
    color: str
    xy: tuple[float, float]

    @property
    def rgba(self):
        return COLORS[self.color]


@dataclass(frozen=True)
class Layout:
    objects: tuple[ObjectSpec, ...]
    pads: tuple[PadSpec, ...] = ()
    bin_xy: tuple[float, float] | None = None


@dataclass(frozen=True)
class Move:
    """Drive the grasp point to `target(env)` over `steps` control steps, gripper to `gripper`."""

    target: Callable | None  # (env, current target) -> (3,) world position; None: stay
    gripper: str  # 'open', 'release' (slightly open) or 'closed'
    steps: int
    # (env) -> (3,) world direction for the fixed-to-moving jaw axis, set when the move starts
    # and kept by later moves; None: keep the current one.
    jaw: Callable | None = None
    # Finish the horizontal part in the first half of the move, then only descend: a grasp that
    # starts off to the side centres over the object before the jaws come down beside it.
    lateral_first: bool = False
    # The descent that brings the open jaws around an object (`ScriptedExpert` gap_centred_grasp).
    grasp: bool = False


@dataclass(frozen=True)
class EventPlan:
    caption: str
    moves: tuple[Move, ...]
    # An approach (reach above an object) whose end the next event corrects from wherever the
    # arm is: the expert may aim it off target on purpose (`ScriptedExpert` approach_noise).
    approach: bool = False


class SuccessTracker:
    """Success detector with memory (some tasks care about order or history)."""

    def reset(self, env) -> None:
        pass

    def update(self, env) -> None:
        pass

    def success(self, env) -> bool:
        raise NotImplementedError


@dataclass
class TaskEpisode:
    family: str
    seed: int
    split: str
    instruction: str
    layout: Layout
    plan: list[EventPlan]
    tracker: SuccessTracker = field(repr=False, default=None)


# --------------------------------------------------------------------------- geometry helpers
@dataclass(frozen=True)
class WorldTarget:
    """A move target fixed in the world (above or at an object, a fixed point), not relative to
    where the gripper is: an event that ends on one has a place to be measured against."""

    point: Callable  # (env) -> (3,) world position

    def __call__(self, env, cur=None) -> np.ndarray:
        return np.asarray(self.point(env), dtype=float)


@dataclass(frozen=True)
class CarryTarget:
    """Carries the held object, not the grasp point, above a world target: closing the jaws
    shifts the object in the grasp by up to ~2 cm, so the grasp point aims off by the object's
    offset from it, measured when the move starts."""

    body: str
    above: WorldTarget

    def __call__(self, env, cur) -> np.ndarray:
        held_offset = np.array([*(env.body_pos(self.body)[:2] - cur[:2]), 0.0])
        return self.above(env) - held_offset


def event_target(event: EventPlan, env) -> np.ndarray | None:
    """Where the expert would end `event`'s grasp point in the world as it is now (its last
    move's target), or None when that target is relative to the gripper alone (lower, release,
    push). For a carry, the grasp point that puts the held object where it belongs."""
    targets = [m.target for m in event.moves if m.target is not None]
    last = targets[-1] if targets else None
    if isinstance(last, WorldTarget):
        return last(env)
    if isinstance(last, CarryTarget):
        return last(env, env.grasp_point())
    return None


def _above(body: str, z: float = TRAVEL_Z):
    return WorldTarget(lambda env: np.array([*env.body_pos(body)[:2], z]))


def _grasp_at(obj: ObjectSpec):
    return WorldTarget(
        lambda env: np.array([*env.body_pos(obj.body)[:2], obj.half_height + GRASP_ABOVE_CENTER])
    )


def _fixed(xyz):
    return WorldTarget(lambda env: np.asarray(xyz, dtype=float))


def _resting_on_table(env, obj: ObjectSpec, tol: float = 0.008) -> bool:
    return abs(env.body_pos(obj.body)[2] - obj.half_height) < tol


GRIPPER_BODIES = ('gripper', 'moving_jaw_so101_v1')


def _released(env, obj: ObjectSpec) -> bool:
    """True when no gripper geom touches the object: it stands on its own."""
    model, data = env.model, env.data
    gripper = {model.body(b).id for b in GRIPPER_BODIES}
    target = model.body(obj.body).id
    for contact in data.contact[: data.ncon]:
        bodies = {model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]}
        if target in bodies and bodies & gripper:
            return False
    return True


def _face_aligned_jaw(obj: ObjectSpec):
    """Jaw axis across two opposite faces of a cube (the pair nearest world y); y for cylinders.

    Squeezing a yawed cube with jaws along world y catches its corners and twists it out of the
    grasp; facing its sides keeps the pads flat on them.
    """

    def jaw(env):
        if obj.kind != 'cube':
            return WORLD_Y
        axes = env.body_xmat(obj.body)[:, :2].T.copy()  # the cube's x and y axes, in the world
        axes[:, 2] = 0.0
        best = axes[np.argmax(np.abs(axes[:, 1]))]
        return best * np.sign(best[1]) / np.linalg.norm(best)

    return jaw


def _pick_events(obj: ObjectSpec) -> list[EventPlan]:
    return [
        EventPlan(
            f'reach above the {obj.name}',
            (Move(_above(obj.body), 'open', 30, jaw=_face_aligned_jaw(obj)),),
            approach=True,
        ),
        EventPlan(
            f'grasp the {obj.name}',
            (
                Move(
                    _grasp_at(obj),
                    'open',
                    24,
                    jaw=_face_aligned_jaw(obj),
                    lateral_first=True,
                    grasp=True,
                ),
                Move(None, 'closed', 24),
            ),
        ),
        EventPlan(f'lift the {obj.name}', (Move(_above(obj.body), 'closed', 18),)),
    ]


def _release_events(
    obj: ObjectSpec, where: str, above_target: WorldTarget, release_z: float
) -> list[EventPlan]:
    """Carry `obj` above `above_target` and set it down with its centre at `release_z`.

    Closing the gripper shifts the object within the jaws by up to ~2 cm; the targets correct for
    the object's offset from the commanded grasp point, measured when each move starts.
    """

    # Near the base the wrist cannot point straight down and the jaws hang low: retreat well
    # clear of a tower or the bin walls before moving on.
    retreat_z = max(TRAVEL_Z, release_z + RETREAT_ABOVE_RELEASE)

    carry = CarryTarget(obj.body, above_target)

    def lower(env, cur):
        return np.array([*carry(env, cur)[:2], release_z + (cur[2] - env.body_pos(obj.body)[2])])

    return [
        EventPlan(f'move the {obj.name} above {where}', (Move(carry, 'closed', 30),)),
        EventPlan(
            f'release the {obj.name}',
            (
                Move(lower, 'closed', 20),
                Move(None, 'release', 20),
                Move(lambda env, cur: np.array([*cur[:2], retreat_z]), 'release', 14),
            ),
        ),
    ]


# --------------------------------------------------------------------------- layouts
def _sample_points(
    rng, n: int, min_dist: float, region=WORKSPACE, avoid=(), reach: float = MAX_REACH
) -> list:
    """`n` points in `region`, within `reach` of the base, `min_dist` apart and from `avoid`.

    Sequential rejection sampling (restarting when a point finds no room): rejecting whole
    layouts accepts a fraction of a percent of them once the reach limit cuts the corners.
    """
    if n == 0:
        return []
    for _ in range(100):
        pts = []
        for _ in range(200):
            p = (float(rng.uniform(*region[0])), float(rng.uniform(*region[1])))
            if np.hypot(*p) <= reach and all(
                np.hypot(p[0] - q[0], p[1] - q[1]) >= min_dist for q in [*pts, *avoid]
            ):
                pts.append(p)
                if len(pts) == n:
                    return pts
    raise RuntimeError('could not sample a layout; the workspace is too crowded')


def _objects(rng, count: int, points, allow_cylinders: bool = True) -> tuple[ObjectSpec, ...]:
    colors = rng.permutation(list(COLORS))[:count]
    cubes = iter(f'cube_{i}' for i in range(NUM_CUBES))
    cylinders = iter(f'cylinder_{i}' for i in range(NUM_CYLINDERS))
    specs, n_cyl = [], 0
    for color, xy in zip(colors, points, strict=True):
        use_cyl = allow_cylinders and n_cyl < NUM_CYLINDERS and rng.random() < 0.3
        n_cyl += use_cyl
        body = next(cylinders) if use_cyl else next(cubes)
        specs.append(
            ObjectSpec(
                body,
                'cylinder' if use_cyl else 'cube',
                str(color),
                (float(xy[0]), float(xy[1])),
                float(rng.uniform(-0.3, 0.3)),
            )
        )
    return tuple(specs)


def _instruction(rng, family: str, split: str, **names) -> str:
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    templates = INSTRUCTIONS[family][split]
    return templates[rng.integers(len(templates))].format(**names)


# --------------------------------------------------------------------------- families
class _PlacedOnPad(SuccessTracker):
    def __init__(self, obj: ObjectSpec, pad: PadSpec):
        self.obj, self.pad = obj, pad

    def success(self, env) -> bool:
        xy = env.body_pos(self.obj.body)[:2]
        inside = np.all(np.abs(xy - np.asarray(self.pad.xy)) < PAD_HALF)
        return bool(inside and _resting_on_table(env, self.obj) and _released(env, self.obj))


def pick_place(rng, split: str, seed: int) -> TaskEpisode:
    n_distractors = int(rng.integers(1, 3))
    pad_xy, *obj_xy = _sample_points(rng, 2 + n_distractors, min_dist=0.085)
    objects = _objects(rng, 1 + n_distractors, obj_xy)
    pad_colors = [c for c in COLORS if c != objects[0].color]
    pad = PadSpec('pad_0', pad_colors[rng.integers(len(pad_colors))], tuple(map(float, pad_xy)))
    obj = objects[0]
    plan = _pick_events(obj) + _release_events(
        obj, f'the {pad.color} pad', _fixed((*pad.xy, TRAVEL_Z)), obj.half_height - 0.002
    )
    return TaskEpisode(
        'pick_place',
        seed,
        split,
        _instruction(rng, 'pick_place', split, obj=obj.name, pad=pad.color),
        Layout(objects, (pad,)),
        plan,
        _PlacedOnPad(obj, pad),
    )


class _Stacked(SuccessTracker):
    def __init__(self, top: ObjectSpec, bottom: ObjectSpec):
        self.top, self.bottom = top, bottom

    def success(self, env) -> bool:
        top, bottom = env.body_pos(self.top.body), env.body_pos(self.bottom.body)
        aligned = np.hypot(*(top[:2] - bottom[:2])) < 0.02
        on_top = abs(top[2] - bottom[2] - 2 * CUBE_HALF) < 0.008
        return bool(
            aligned and on_top and _resting_on_table(env, self.bottom) and _released(env, self.top)
        )


def stack(rng, split: str, seed: int) -> TaskEpisode:
    n_distractors = int(rng.integers(0, 2))
    # Nearer the base than the other tasks: the jaws must clear a 4 cm tower after release.
    region = ((WORKSPACE[0][0], 0.25), WORKSPACE[1])
    points = _sample_points(rng, 2 + n_distractors, min_dist=0.085, region=region)
    objects = _objects(rng, 2 + n_distractors, points, allow_cylinders=False)
    top, bottom = objects[0], objects[1]
    plan = _pick_events(top) + _release_events(
        top, f'the {bottom.name}', _above(bottom.body), 3 * CUBE_HALF - 0.002
    )
    return TaskEpisode(
        'stack',
        seed,
        split,
        _instruction(rng, 'stack', split, a=top.name, b=bottom.name),
        Layout(objects),
        plan,
        _Stacked(top, bottom),
    )


def _in_bin(env, obj: ObjectSpec) -> bool:
    pos, center = env.body_pos(obj.body), env.mocap_pos('bin')
    return bool(
        np.all(np.abs(pos[:2] - center[:2]) < BIN_HALF) and pos[2] < BIN_WALL_HEIGHT + 0.02
    )


class _InBinInOrder(SuccessTracker):
    def __init__(self, first: ObjectSpec, second: ObjectSpec):
        self.first, self.second = first, second

    def reset(self, env) -> None:
        self.entered = {}

    def update(self, env) -> None:
        for obj in (self.first, self.second):
            if obj.body not in self.entered and _in_bin(env, obj):
                self.entered[obj.body] = env.step_count

    def success(self, env) -> bool:
        both_in = _in_bin(env, self.first) and _in_bin(env, self.second)
        order = self.entered.get(self.first.body, np.inf) < self.entered.get(
            self.second.body, np.inf
        )
        return bool(both_in and order and _released(env, self.second))


def bin_ordered(rng, split: str, seed: int) -> TaskEpisode:
    side = 1.0 if rng.random() < 0.5 else -1.0
    bin_xy = (float(rng.uniform(0.2, 0.24)), side * 0.135)
    # Objects keep clear of the bin: the gripper's housing must not catch its wall on a grasp.
    region = (WORKSPACE[0], (-0.11, 0.0) if side > 0 else (0.0, 0.11))
    n_distractors = int(rng.integers(0, 2))
    points = _sample_points(rng, 2 + n_distractors, min_dist=0.08, region=region)
    objects = _objects(rng, 2 + n_distractors, points)
    first, second = objects[0], objects[1]
    # The first object goes to the far half of the bin, the second to the near half.
    first_spot = _fixed((bin_xy[0] + 0.035, bin_xy[1], TRAVEL_Z))
    second_spot = _fixed((bin_xy[0] - 0.035, bin_xy[1], TRAVEL_Z))
    release_z = BIN_WALL_HEIGHT + 0.025
    plan = (
        _pick_events(first)
        + _release_events(first, 'the bin', first_spot, release_z)
        + _pick_events(second)
        + _release_events(second, 'the bin', second_spot, release_z)
    )
    return TaskEpisode(
        'bin_ordered',
        seed,
        split,
        _instruction(rng, 'bin_ordered', split, a=first.name, b=second.name),
        Layout(objects, (), bin_xy),
        plan,
        _InBinInOrder(first, second),
    )


class _Pushed(SuccessTracker):
    def __init__(self, obj: ObjectSpec, direction: np.ndarray):
        self.obj, self.direction = obj, direction

    def success(self, env) -> bool:
        moved = env.body_pos(self.obj.body)[:2] - np.asarray(self.obj.xy)
        along = moved @ self.direction
        return bool(along > 0.6 * PUSH_DISTANCE and _resting_on_table(env, self.obj, 0.01))


def push(rng, split: str, seed: int) -> TaskEpisode:
    left = rng.random() < 0.5
    direction = np.array([0.0, 1.0 if left else -1.0])
    # Start on the side it moves away from, so that the goal stays inside the workspace, and in
    # the near part of the table, so that distractors fit beyond the gripper's corridor.
    region = ((WORKSPACE[0][0], 0.21), (-0.09, -0.02) if left else (0.02, 0.09))
    n_distractors = int(rng.integers(0, 2))
    (obj_xy,) = _sample_points(rng, 1, min_dist=0.08, region=region)
    # Distractors at least PUSH_CLEARANCE farther out than the corridor the gripper sweeps.
    far = ((obj_xy[0] + PUSH_CLEARANCE, WORKSPACE[0][1]), WORKSPACE[1])
    others = _sample_points(rng, n_distractors, 0.08, far, reach=np.inf)  # never grasped
    objects = _objects(rng, 1 + n_distractors, [obj_xy, *others], allow_cylinders=False)
    obj = objects[0]
    behind = 0.06

    @WorldTarget
    def start(env):
        return np.array([*(env.body_pos(obj.body)[:2] - behind * direction), TRAVEL_Z])

    @WorldTarget
    def low(env):
        return np.array([*(env.body_pos(obj.body)[:2] - behind * direction), 0.018])

    plan = [
        EventPlan(f'move behind the {obj.name}', (Move(start, 'closed', 30),)),
        EventPlan('lower the gripper to the table', (Move(low, 'closed', 20),)),
        EventPlan(
            f'push the {obj.name} to the {"left" if left else "right"}',
            (
                Move(
                    lambda env, cur: (
                        cur + np.array([*(PUSH_DISTANCE + behind - CUBE_HALF) * direction, 0.0])
                    ),
                    'closed',
                    45,
                ),
            ),
        ),
        EventPlan(
            'lift the gripper',
            (Move(lambda env, cur: np.array([*cur[:2], TRAVEL_Z]), 'closed', 15),),
        ),
    ]
    return TaskEpisode(
        'push',
        seed,
        split,
        _instruction(rng, 'push', split, obj=obj.name, dir='left' if left else 'right'),
        Layout(objects),
        plan,
        _Pushed(obj, direction),
    )


TASK_FAMILIES: dict[str, Callable] = {
    'pick_place': pick_place,
    'stack': stack,
    'bin_ordered': bin_ordered,
    'push': push,
}


def make_episode(family: str, rng, split: str, seed: int) -> TaskEpisode:
    return TASK_FAMILIES[family](rng, split, seed)
