"""The node sets of each wallwm setup, shared by the launch files and the pip-only launcher.

Both turn these `NodeSpec`s into processes (launch_ros `Node` actions or subprocesses), so
`ros2 launch wallwm_bringup sim.launch.py` and `ros2 run wallwm_bringup launch sim` start the
same executables with the same parameters.
"""

from dataclasses import dataclass
from dataclasses import field

from wallwm_bringup import profiles

MODES = ('event', 'unified', 'chunk')


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str
    name: str
    params_files: tuple[str, ...] = ()
    parameters: dict = field(default_factory=dict)

    def ros_args(self) -> list[str]:
        """The `--ros-args` a process needs to run this node."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        for path in self.params_files:
            args += ['--params-file', path]
        for key, value in self.parameters.items():
            args += ['-p', f'{key}:={_param_text(value)}']
        return args


def _param_text(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(_param_text(v) for v in value) + ']'
    return str(value)


def policy(
    profile: str, bundle: str, mode: str = '', use_sim_time: bool = False, autostart: bool = True
) -> NodeSpec:
    """The policy lifecycle node on a robot profile (validated here, before anything starts)."""
    if mode and mode not in MODES:
        raise ValueError(f'mode {mode!r} is not one of {MODES}')
    checked = profiles.load(profile)
    parameters = {'bundle_path': bundle, 'autostart': autostart, 'use_sim_time': use_sim_time}
    if mode:
        parameters['mode'] = mode
    return NodeSpec(
        'wallwm_policy', 'policy_node', 'wallwm_policy', (str(checked.path),), parameters
    )


def sim(
    task_family: str = 'pick_place', seed: int = 0, split: str = 'train', image_size: int = 128
) -> NodeSpec:
    return NodeSpec(
        'wallwm_sim',
        'sim_bridge',
        'wallwm_sim',
        (),
        {'task_family': task_family, 'seed': seed, 'split': split, 'image_size': image_size},
    )


def player(bag: str, rate: float = 1.0) -> NodeSpec:
    return NodeSpec(
        'wallwm_tools',
        'bag_player',
        'wallwm_bag_player',
        (),
        {'bag': bag, 'rate': float(rate), 'publish_clock': True},
    )


def recorder(output: str, topics: list[str] | None = None, use_sim_time: bool = False) -> NodeSpec:
    parameters = {'output': output, 'use_sim_time': use_sim_time}
    if topics:
        parameters['topics'] = list(topics)
    return NodeSpec('wallwm_tools', 'recorder', 'wallwm_recorder', (), parameters)


def sim_setup(
    bundle: str,
    mode: str = 'event',
    task_family: str = 'pick_place',
    seed: int = 0,
    split: str = 'train',
    profile: str = 'so101_sim',
    record: str = '',
) -> list[NodeSpec]:
    """MuJoCo bridge + policy on sim time (+ recorder when `record` names a bag folder)."""
    nodes = [sim(task_family, seed, split), policy(profile, bundle, mode, use_sim_time=True)]
    if record:
        nodes.append(recorder(record, use_sim_time=True))
    return nodes


def replay_setup(
    bag: str, bundle: str, profile: str, mode: str = 'event', rate: float = 1.0
) -> list[NodeSpec]:
    """A recorded bag played on its topics with /clock, and the policy on sim time."""
    return [player(bag, rate), policy(profile, bundle, mode, use_sim_time=True)]


SETUPS = {
    'policy': lambda **kw: [policy(**kw)],
    'sim': sim_setup,
    'replay': replay_setup,
    'record': lambda **kw: [recorder(**kw)],
}
