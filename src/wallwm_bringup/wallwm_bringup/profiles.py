"""Robot profiles: `ros__parameters` YAML read by the policy node, validated here with clear
errors.

A profile names the robot's joints and their limits, the camera topics and encodings, the joint
state and command topics and the control rate. The same file is passed to the policy node (as a
params file) by the launch files, by `wallwm_bringup launch` and by the tests.

    ros2 run wallwm_bringup validate_profile so101_sim my_robot.yaml
"""

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

PACKAGE = 'wallwm_bringup'
ENCODINGS = ('rgb8', 'bgr8', 'mono8', 'jpeg', 'png')
TRANSPORTS = ('raw', 'compressed')


class ProfileError(ValueError):
    """A profile that cannot be used; the message lists every problem with its key."""


@dataclass(frozen=True)
class RobotProfile:
    path: Path
    name: str
    robot: str
    description: str
    control_rate_hz: float
    camera_topics: tuple[str, ...]
    camera_encodings: tuple[str, ...]
    transport: str
    joint_states_topic: str
    command_topic: str
    joint_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_velocity: tuple[float, ...]


def profiles_dir() -> Path:
    """Installed share/wallwm_bringup/config/profiles, or the source folder next to this file."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / 'config' / 'profiles'
    except Exception:  # noqa: BLE001 -- not installed: use the source tree
        return Path(__file__).resolve().parent.parent / 'config' / 'profiles'


def available_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob('*.yaml'))


def resolve(name_or_path: str) -> Path:
    """A profile name (`so101_sim`) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in ('.yaml', '.yml') or path.exists():
        if not path.is_file():
            raise ProfileError(f'{path}: no such profile file')
        return path
    candidate = profiles_dir() / f'{name_or_path}.yaml'
    if not candidate.is_file():
        raise ProfileError(f'unknown profile {name_or_path!r}; available: {available_profiles()}')
    return candidate


def _flatten(tree: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def load(name_or_path: str) -> RobotProfile:
    path = resolve(name_or_path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f'{path}: not valid YAML: {error}') from error
    if not isinstance(document, dict) or len(document) != 1:
        raise ProfileError(f'{path}: expected one node key (e.g. "/**") holding ros__parameters')
    ((node_key, body),) = document.items()
    if not isinstance(body, dict) or not isinstance(body.get('ros__parameters'), dict):
        raise ProfileError(f'{path}: {node_key}: missing ros__parameters')
    p = _flatten(body['ros__parameters'])
    problems: list[str] = []

    def need(key: str, kind, check=None, why: str = ''):
        if key not in p:
            problems.append(f'{key}: missing')
            return None
        value = p[key]
        ok = (
            (isinstance(value, kind) and not isinstance(value, bool))
            if kind is not list
            else (isinstance(value, list))
        )
        if not ok or (check is not None and not check(value)):
            problems.append(f'{key}: {value!r} {why or "has the wrong type"}')
            return None
        return value

    def strings(v):
        return all(isinstance(s, str) and s for s in v)

    def numbers(v):
        return all(isinstance(x, (int, float)) and math.isfinite(x) for x in v)

    name = need('profile.name', str)
    robot = need('profile.robot', str)
    description = need('profile.description', str)
    rate = need(
        'profile.control_rate_hz', (int, float), lambda v: 0 < v <= 1000, 'must be in (0, 1000] Hz'
    )
    topics = need(
        'cameras.topics',
        list,
        lambda v: v and strings(v),
        'must be a non-empty list of topic names',
    )
    encodings = need(
        'profile.camera_encodings',
        list,
        lambda v: all(e in ENCODINGS for e in v),
        f'must each be one of {ENCODINGS}',
    )
    transport = need(
        'cameras.transport', str, lambda v: v in TRANSPORTS, f'must be one of {TRANSPORTS}'
    )
    joint_states = need('joint_states_topic', str, bool, 'must name a topic')
    command = need('command_topic', str, bool, 'must name a topic')
    names = need(
        'joint_limits.names',
        list,
        lambda v: v and strings(v) and len(set(v)) == len(v),
        'must be distinct joint names',
    )
    lower = need('joint_limits.lower', list, numbers, 'must be finite numbers [rad]')
    upper = need('joint_limits.upper', list, numbers, 'must be finite numbers [rad]')
    velocity = need(
        'joint_limits.max_velocity',
        list,
        lambda v: numbers(v) and all(x > 0 for x in v),
        'must be positive [rad/s]',
    )
    if topics and encodings is not None and len(topics) != len(encodings):
        problems.append(
            f'profile.camera_encodings: {len(encodings)} encodings for '
            f'{len(topics)} cameras.topics'
        )
    if transport and encodings:
        compressed = {'jpeg', 'png'}
        if (transport == 'compressed') != all(e in compressed for e in encodings):
            problems.append(
                f'cameras.transport: {transport!r} does not match encodings {encodings}'
            )
    if names and lower is not None and upper is not None and velocity is not None:
        for key, values in (('lower', lower), ('upper', upper), ('max_velocity', velocity)):
            if len(values) != len(names):
                problems.append(
                    f'joint_limits.{key}: {len(values)} values for {len(names)} joints'
                )
        for joint, lo, hi in zip(names, lower, upper, strict=False):
            if lo >= hi:
                problems.append(f'joint_limits: {joint}: lower {lo} is not below upper {hi}')
    if problems:
        raise ProfileError(f'{path}: invalid robot profile:\n  ' + '\n  '.join(problems))
    return RobotProfile(
        path,
        name,
        robot,
        description,
        float(rate),
        tuple(topics),
        tuple(encodings),
        transport,
        joint_states,
        command,
        tuple(names),
        tuple(map(float, lower)),
        tuple(map(float, upper)),
        tuple(map(float, velocity)),
    )


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(f'usage: validate_profile <name or file>...  (profiles: {available_profiles()})')
        return 2
    status = 0
    for arg in args:
        try:
            profile = load(arg)
            print(
                f'{profile.path}: ok ({profile.robot}, {len(profile.joint_names)} joints, '
                f'{len(profile.camera_topics)} cameras)'
            )
        except ProfileError as error:
            print(error, file=sys.stderr)
            status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
