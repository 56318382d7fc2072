"""TabletopEnv: the SO-101 tabletop as a plain Python class (no ROS): reset, step, render.

Actions are absolute joint position targets in `JOINT_NAMES` order (radians), applied at the
control rate with physics substeps in between, like a joint trajectory controller holding the
latest command. Observations are the measured joint positions and one RGB image per camera.
"""

from dataclasses import dataclass
from dataclasses import field

import mujoco
import numpy as np
from lerobot_env_so101.ik_control import control_point
from lerobot_env_so101.mujoco_env import grasp_point_offset

from wallwm_sim.env.scene import JOINT_NAMES
from wallwm_sim.env.scene import NUM_CUBES
from wallwm_sim.env.scene import NUM_CYLINDERS
from wallwm_sim.env.scene import NUM_PADS
from wallwm_sim.env.scene import PARKED_XY
from wallwm_sim.env.scene import SceneConfig
from wallwm_sim.env.scene import build_model
from wallwm_sim.env.tasks import TASK_FAMILIES
from wallwm_sim.env.tasks import Layout
from wallwm_sim.env.tasks import TaskEpisode
from wallwm_sim.env.tasks import make_episode

GRIPPER_OPEN = (
    1.0  # rad: jaws apart for the approach (wider lets the moving jaw sweep the object away)
)
GRIPPER_CLOSED = 0.2  # rad: squeezes a 4 cm object firmly
# Releasing opens only a little: a wide swing of the moving jaw drags the object along.
GRIPPER_RELEASE = 0.62  # rad; the pads are 40 mm apart (an object's width) at 0.46


@dataclass
class Observation:
    state: np.ndarray  # (6,) measured joint positions [rad], JOINT_NAMES order
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (H, W, 3) uint8 RGB
    time: float = 0.0  # simulated seconds since reset


class TabletopEnv:
    """One simulated SO-101 tabletop. Not thread-safe; one per process."""

    def __init__(self, config: SceneConfig = SceneConfig(), render: bool = True):  # noqa: B008
        self.config = config
        self.model = build_model(config)
        self.data = mujoco.MjData(self.model)
        self.joint_qpos = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self.joint_dof = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self.actuators = np.array([self.model.actuator(n).id for n in JOINT_NAMES])
        self.ctrl_range = self.model.actuator_ctrlrange[self.actuators].copy()
        self.joint_range = self.model.jnt_range[
            [self.model.joint(n).id for n in JOINT_NAMES]
        ].copy()
        self._renderer = (
            mujoco.Renderer(self.model, config.image_height, config.image_width)
            if render
            else None
        )
        self.episode: TaskEpisode | None = None
        self.step_count = 0
        self.home_qpos = np.array([0.0, -1.4, 0.7, 1.6, 0.0, GRIPPER_OPEN])
        self._grasp_site = self.model.site('gripperframe').id
        self._grasp_offset = grasp_point_offset(self.model, self._grasp_site)

    # ------------------------------------------------------------------ episode
    def reset(
        self, seed: int, task_family: str = 'pick_place', split: str = 'train'
    ) -> Observation:
        """Deterministic per (seed, task_family, split): layout, colours and instruction."""
        if task_family not in TASK_FAMILIES:
            raise ValueError(
                f'unknown task family {task_family!r}; available: {sorted(TASK_FAMILIES)}'
            )
        rng = np.random.default_rng(seed)
        self.episode = make_episode(task_family, rng, split, seed)
        mujoco.mj_resetData(self.model, self.data)
        self._apply_layout(self.episode.layout)
        self.data.qpos[self.joint_qpos] = self.home_qpos
        self.data.ctrl[self.actuators] = self.home_qpos
        mujoco.mj_forward(self.model, self.data)
        self.step_count = 0
        self.episode.tracker.reset(self)
        return self.observe()

    def _apply_layout(self, layout: Layout) -> None:
        for kind, count in (('cube', NUM_CUBES), ('cylinder', NUM_CYLINDERS)):
            for i in range(count):
                self._place_free_body(f'{kind}_{i}', (PARKED_XY[0] - 0.1 * i, PARKED_XY[1]), None)
        for obj in layout.objects:
            self._place_free_body(obj.body, obj.xy, obj.rgba, obj.yaw)
        for i in range(NUM_PADS):
            self.data.mocap_pos[self._mocap(f'pad_{i}')] = (
                PARKED_XY[0],
                -PARKED_XY[1] - 0.1 * i,
                0.0005,
            )
        for pad in layout.pads:
            self.data.mocap_pos[self._mocap(pad.body)] = (*pad.xy, 0.0005)
            self.model.geom_rgba[self.model.geom(pad.body).id] = pad.rgba
        bin_xy = layout.bin_xy if layout.bin_xy is not None else (PARKED_XY[0] - 0.3, 0.0)
        self.data.mocap_pos[self._mocap('bin')] = (*bin_xy, 0.0)

    def _mocap(self, body: str) -> int:
        return self.model.body_mocapid[self.model.body(body).id]

    def _place_free_body(self, body: str, xy, rgba, yaw: float = 0.0) -> None:
        joint = self.model.joint(body)
        geom = self.model.geom(body)
        z = geom.size[2] if geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX else geom.size[1]
        adr = joint.qposadr[0]
        self.data.qpos[adr : adr + 3] = (xy[0], xy[1], z + 0.0005)
        self.data.qpos[adr + 3 : adr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        if rgba is not None:
            self.model.geom_rgba[geom.id] = rgba

    # ------------------------------------------------------------------ stepping
    def step(self, action: np.ndarray) -> Observation:
        """Hold `action` (joint targets, clipped to the actuator ranges) for one control period."""
        action = np.asarray(action, dtype=float)
        if action.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(action)):
            raise ValueError(
                f'action must be {len(JOINT_NAMES)} finite joint targets, got {action!r}'
            )
        self.data.ctrl[self.actuators] = np.clip(
            action, self.ctrl_range[:, 0], self.ctrl_range[:, 1]
        )
        mujoco.mj_step(self.model, self.data, nstep=self.config.physics_substeps)
        self.step_count += 1
        if self.episode is not None:
            self.episode.tracker.update(self)
        return self.observe()

    def observe(self, render: bool = True) -> Observation:
        images = self.render() if (render and self._renderer is not None) else {}
        return Observation(state=self.joint_positions(), images=images, time=float(self.data.time))

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.joint_qpos].astype(np.float32)

    def render(self) -> dict[str, np.ndarray]:
        images = {}
        for camera in self.config.cameras:
            self._renderer.update_scene(self.data, camera=camera)
            images[camera] = self._renderer.render().copy()
        return images

    # ------------------------------------------------------------------ task queries
    @property
    def instruction(self) -> str:
        return self.episode.instruction if self.episode else ''

    @property
    def task_family(self) -> str:
        return self.episode.family if self.episode else ''

    def success(self) -> bool:
        return bool(self.episode and self.episode.tracker.success(self))

    def body_pos(self, body: str) -> np.ndarray:
        return self.data.xpos[self.model.body(body).id].copy()

    def body_xmat(self, body: str) -> np.ndarray:
        """(3, 3) rotation of a body in the world frame."""
        return self.data.xmat[self.model.body(body).id].reshape(3, 3).copy()

    def grasp_point(self) -> np.ndarray:
        """(3,) world position of the point between the fingertip pads: what the expert drives
        to its targets, and what the evaluation measures an event's end by."""
        return control_point(self.data, self._grasp_site, self._grasp_offset).copy()

    def mocap_pos(self, body: str) -> np.ndarray:
        return self.data.mocap_pos[self._mocap(body)].copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
