"""MuJoCo SO-101 tabletop bridge + the policy on sim time (optionally recording the run).

ros2 launch wallwm_bringup sim.launch.py bundle:=/path/to/bundle task_family:=stack mode:=event
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from wallwm_bringup import system


def _nodes(context):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    specs = system.sim_setup(
        bundle=value('bundle'),
        mode=value('mode'),
        task_family=value('task_family'),
        seed=int(value('seed')),
        split=value('split'),
        profile=value('profile'),
        record=value('record'),
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
            DeclareLaunchArgument('bundle', description='model bundle folder'),
            DeclareLaunchArgument(
                'mode', default_value='event', description='event, unified or chunk'
            ),
            DeclareLaunchArgument(
                'task_family',
                default_value='pick_place',
                description='pick_place, stack, bin_ordered or push',
            ),
            DeclareLaunchArgument('seed', default_value='0', description='episode seed'),
            DeclareLaunchArgument(
                'split',
                default_value='train',
                description="instruction paraphrases: 'train' or 'heldout'",
            ),
            DeclareLaunchArgument(
                'profile', default_value='so101_sim', description='robot profile'
            ),
            DeclareLaunchArgument(
                'record',
                default_value='',
                description='bag folder to record the run to; empty = no recording',
            ),
            OpaqueFunction(function=_nodes),
        ]
    )
