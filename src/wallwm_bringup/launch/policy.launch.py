"""The WALL-WM policy lifecycle node on a robot profile.

ros2 launch wallwm_bringup policy.launch.py profile:=so101_real bundle:=/path/to/bundle mode:=event
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from wallwm_bringup import system


def _nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    spec = system.policy(
        profile=value('profile'),
        bundle=value('bundle'),
        mode=value('mode'),
        use_sim_time=value('use_sim_time') == 'true',
        autostart=value('autostart') == 'true',
    )
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            parameters=[*spec.params_files, spec.parameters],
            output='screen',
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                'profile', description='robot profile name (config/profiles) or YAML file'
            ),
            DeclareLaunchArgument(
                'bundle', description='model bundle folder (manifest.json, *.onnx)'
            ),
            DeclareLaunchArgument(
                'mode',
                default_value='',
                description='event, unified or chunk; ' 'empty = the first mode the bundle offers',
            ),
            DeclareLaunchArgument(
                'use_sim_time',
                default_value='false',
                description='follow /clock (simulation, bag replay)',
            ),
            DeclareLaunchArgument(
                'autostart',
                default_value='true',
                description='configure and activate at start; false leaves the '
                'node unconfigured for a lifecycle manager',
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
