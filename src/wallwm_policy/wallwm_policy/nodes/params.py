"""The policy node's ROS parameters: one table (type, default, description, range, read_only),
declared with ParameterDescriptors and read into the core's frozen config dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import IntegerRange
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from wallwm_policy.core.controller import ControlConfig
from wallwm_policy.core.sessions import DEFAULT_PROVIDERS
from wallwm_policy.core.sessions import SessionConfig
from wallwm_policy.core.sync import SyncConfig

DEFAULT_COMMAND_TOPIC = '/joint_trajectory_controller/joint_trajectory'
TRANSPORT_RAW = 'raw'
TRANSPORT_COMPRESSED = 'compressed'

_STRINGS = Parameter.Type.STRING_ARRAY
_DOUBLES = Parameter.Type.DOUBLE_ARRAY
# name: (default, description, read_only, (min, max) or None, explicit type for empty arrays)
PARAMETERS = {
    'bundle_path': ('', 'model bundle folder (manifest.json, *.onnx, tokenizer.json)', True, None,
                    None),
    'autostart': (False, 'configure and activate on start (no lifecycle manager needed)', True,
                  None, None),
    'mode': ('', 'initial mode: event, unified or chunk; empty = the first the bundle offers',
             True, None, None),
    'cameras.topics': ([], 'image topics in bundle camera order; empty = camera/<name>/image_raw',
                       True, None, _STRINGS),
    'cameras.transport': (TRANSPORT_RAW, 'raw (sensor_msgs/Image) or compressed '
                          '(sensor_msgs/CompressedImage on <topic>/compressed)', True, None, None),
    'joint_states_topic': ('joint_states', 'sensor_msgs/JointState input', True, None, None),
    'command_topic': (DEFAULT_COMMAND_TOPIC, 'trajectory_msgs/JointTrajectory output', True,
                      None, None),
    'sync.tolerance': (0.05, 'max |camera stamp - joint state stamp| [s]', True, (0.0, 1.0),
                       None),
    'safety.max_input_age': (0.5, 'inputs older than this vs the node clock hold the arm [s]',
                             True, (0.01, 10.0), None),
    'safety.hold_abort': (1.0, 'a goal holding longer than this is aborted [s]', True,
                          (0.05, 60.0), None),
    'chunk.execute_steps': (24, 'H: steps executed from a plan before the next is requested',
                            False, (1, 256), None),
    'chunk.approach_steps': (ControlConfig.approach_steps, 'once the planned boundary is this '
                             'near, replan once from the current observation (0 = off)', False,
                             (0, 256), None),
    'chunk.blend_steps': (4, 'steps over which a new plan is blended into the old one', True,
                          (0, 64), None),
    'event.boundary_threshold': (0.5, 'boundary probability that ends an event', False,
                                 (0.01, 1.0), None),
    'event.min_steps': (3, 'boundary ignored for the first steps of an event', True, (1, 1000),
                        None),
    'unified.max_event_steps': (300, 'a new event after this many steps without a boundary',
                                True, (1, 100000), None),
    'inference.providers': (list(DEFAULT_PROVIDERS), 'ONNX Runtime providers in preference order '
                            '(tensorrt, cuda, cpu)', True, None, _STRINGS),
    'inference.intra_op_threads': (2, 'ONNX Runtime threads per operator (0 = auto)', True,
                                   (0, 64), None),
    'inference.allow_spinning': (False, 'let idle ONNX Runtime threads busy-wait (faster on '
                                 "spare cores, steals the control loop's core on small CPUs)",
                                 True, None, None),
    'inference.seed': (0, 'noise seed: same seed and inputs give the same actions', True,
                       (0, 2 ** 31 - 1), None),
    'inference.noise_scale': (ControlConfig.noise_scale, "scale of the flow's start noise "
                              '(0 = deterministic actions)', False, (0.0, 1.0), None),
    'joint_limits.names': ([], 'robot profile: joint names for the limits below', True, None,
                           _STRINGS),
    'joint_limits.lower': ([], 'robot profile: lower position limits [rad]', True, None,
                           _DOUBLES),
    'joint_limits.upper': ([], 'robot profile: upper position limits [rad]', True, None,
                           _DOUBLES),
    'joint_limits.max_velocity': ([], 'robot profile: velocity limits [rad/s]', True, None,
                                  _DOUBLES),
    'diagnostics_period': (1.0, 'seconds between /diagnostics messages', True, (0.1, 60.0),
                           None),
}


@dataclass(frozen=True)
class NodeSettings:
    bundle_path: str
    mode: str
    camera_topics: tuple[str, ...]
    transport: str
    joint_states_topic: str
    command_topic: str
    sync: SyncConfig
    control: ControlConfig
    session: SessionConfig
    limit_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    max_velocity: tuple[float, ...]
    diagnostics_period: float


def declare(node: Node) -> None:
    for name, (default, text, read_only, bounds, ptype) in PARAMETERS.items():
        descriptor = ParameterDescriptor(description=text, read_only=read_only)
        if isinstance(default, float) and bounds:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
        elif isinstance(default, int) and not isinstance(default, bool) and bounds:
            descriptor.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1])]
        if ptype is not None and not default:
            # An empty list has no inferable type: declare the type; overrides still apply.
            descriptor.type = ptype.value
            node.declare_parameter(name, ptype, descriptor)
        else:
            node.declare_parameter(name, default, descriptor)


def _value(node: Node, name: str):
    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:  # an empty-list parameter nobody set
        return None


def read(node: Node) -> NodeSettings:
    """Parameters -> settings; ValueError names the parameter that is wrong."""
    p = {name: _value(node, name) for name in PARAMETERS}
    if p['cameras.transport'] not in (TRANSPORT_RAW, TRANSPORT_COMPRESSED):
        raise ValueError(f"cameras.transport: {p['cameras.transport']!r} is not raw or compressed")
    return NodeSettings(
        bundle_path=p['bundle_path'], mode=p['mode'],
        camera_topics=tuple(p['cameras.topics'] or ()), transport=p['cameras.transport'],
        joint_states_topic=p['joint_states_topic'], command_topic=p['command_topic'],
        sync=SyncConfig(tolerance_s=p['sync.tolerance'], max_age_s=p['safety.max_input_age']),
        control=ControlConfig(execute_steps=p['chunk.execute_steps'],
                              blend_steps=p['chunk.blend_steps'],
                              approach_steps=p['chunk.approach_steps'],
                              boundary_threshold=p['event.boundary_threshold'],
                              min_event_steps=p['event.min_steps'],
                              max_event_steps=p['unified.max_event_steps'],
                              hold_abort_s=p['safety.hold_abort'], seed=p['inference.seed'],
                              noise_scale=p['inference.noise_scale']),
        session=SessionConfig(providers=tuple(p['inference.providers'] or DEFAULT_PROVIDERS),
                              intra_op_threads=p['inference.intra_op_threads'],
                              allow_spinning=p['inference.allow_spinning']),
        limit_names=tuple(p['joint_limits.names'] or ()),
        lower=tuple(p['joint_limits.lower'] or ()), upper=tuple(p['joint_limits.upper'] or ()),
        max_velocity=tuple(p['joint_limits.max_velocity'] or ()),
        diagnostics_period=p['diagnostics_period'])
