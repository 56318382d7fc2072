"""Replay a recorded rosbag2 into the real policy node: bag topics + /clock, policy on sim time.

    ros2 launch wallwm_bringup replay.launch.py bag:=run1 bundle:=<bundle> profile:=so101_real
(With a full ROS 2 install `ros2 bag play --clock run1` works as the player too.)
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from wallwm_bringup import system


def _nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    specs = system.replay_setup(
        bag=value('bag'),
        bundle=value('bundle'),
        profile=value('profile'),
        mode=value('mode'),
        rate=float(value('rate')),
    )
    return [
        Node(
            package=s.package,
            executable=s.executable,
            name=s.name,
            parameters=[*s.params_files, s.parameters],
            output='screen',
        )
        for s in specs
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument('bag', description='rosbag2 folder (mcap or sqlite3)'),
            DeclareLaunchArgument('bundle', description='model bundle folder'),
            DeclareLaunchArgument(
                'profile', description='robot profile the bag was recorded with'
            ),
            DeclareLaunchArgument(
                'mode', default_value='event', description='event, unified or chunk'
            ),
            DeclareLaunchArgument(
                'rate', default_value='1.0', description='playback speed factor'
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
