"""Record a run (cameras, joints, trajectories, EventStatus, ActionChunk) to an mcap bag.

ros2 launch wallwm_bringup record.launch.py output:=run1
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from wallwm_bringup import system


def _nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    topics = [t for t in value('topics').split() if t]
    spec = system.recorder(
        output=value('output'), topics=topics or None, use_sim_time=value('use_sim_time') == 'true'
    )
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            parameters=[spec.parameters],
            output='screen',
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument('output', description='bag folder to create'),
            DeclareLaunchArgument(
                'topics',
                default_value='',
                description='space-separated topics; empty = the default run topics',
            ),
            DeclareLaunchArgument(
                'use_sim_time',
                default_value='false',
                description='stamp messages with /clock time',
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
