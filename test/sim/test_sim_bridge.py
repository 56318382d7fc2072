"""The sim bridge over real DDS: a separate process drives it with JointTrajectory messages."""

import numpy as np
import pytest

pytestmark = pytest.mark.ros

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def _exe():
    from ament_index_python.packages import get_package_prefix

    return f'{get_package_prefix("wallwm_sim")}/lib/wallwm_sim/sim_bridge'


def _trajectory(names, positions, seconds):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory
    from trajectory_msgs.msg import JointTrajectoryPoint

    msg = JointTrajectory(joint_names=names)
    for pos, t in zip(positions, seconds, strict=True):
        msg.points.append(
            JointTrajectoryPoint(
                positions=list(pos), time_from_start=Duration(sec=int(t), nanosec=int(t % 1 * 1e9))
            )
        )
    return msg


def test_trajectories_move_the_arm_and_change_the_images(ros_processes, ros_node, wait_for):
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from wallwm_msgs.msg import TaskStatus
    from wallwm_msgs.srv import ResetEpisode

    joints, images, clocks, status = [], [], [], []
    ros_node.create_subscription(
        JointState, '/joint_states', joints.append, qos_profile_sensor_data
    )
    ros_node.create_subscription(
        Image, '/camera/front/image_raw', images.append, qos_profile_sensor_data
    )
    ros_node.create_subscription(Clock, '/clock', clocks.append, 10)
    ros_node.create_subscription(TaskStatus, '/sim/task_status', status.append, 10)
    ros_processes.start(
        [
            _exe(),
            '--ros-args',
            '-p',
            'task_family:=stack',
            '-p',
            'seed:=3',
            '-p',
            'image_size:=64',
        ],
        name='sim',
    )
    wait_for(lambda: joints and images and status, timeout=30, what='sim output')
    assert list(joints[-1].name) == JOINTS
    assert (images[-1].height, images[-1].width, images[-1].encoding) == (64, 64, 'rgb8')
    assert status[-1].task_family == 'stack' and status[-1].instruction

    reset = ros_node.create_client(ResetEpisode, '/sim/reset')
    assert reset.wait_for_service(timeout_sec=10)
    future = reset.call_async(ResetEpisode.Request(seed=5, task_family='push'))
    response = wait_for(future.result, timeout=10, what='reset response')
    assert response.success and 'push' not in response.message and response.instruction

    start = np.array(joints[-1].position)
    first_image = bytes(images[-1].data)
    target = start + np.array([0.4, 0.2, -0.2, 0.0, 0.3, 0.0])
    pub = ros_node.create_publisher(
        JointTrajectory, '/joint_trajectory_controller/joint_trajectory', 10
    )
    wait_for(lambda: pub.get_subscription_count() > 0, timeout=10, what='bridge subscription')
    pub.publish(_trajectory(JOINTS, [target], [1.0]))
    wait_for(
        lambda: np.abs(np.array(joints[-1].position) - target)[:5].max() < 0.05,
        timeout=20,
        what='the arm to reach the trajectory target',
    )
    assert bytes(images[-1].data) != first_image
    stamps = [c.clock.sec + c.clock.nanosec * 1e-9 for c in clocks]
    assert stamps == sorted(stamps) and stamps[-1] > 1.0

    # Malformed trajectories are rejected: the arm holds its last valid command. (Position
    # servos settle with a small gravity offset, so compare with the settled position.)
    def settled():
        recent = np.array([j.position for j in joints[-15:]])
        return len(joints) > 15 and np.ptp(recent[:, :5], axis=0).max() < 0.002

    wait_for(settled, timeout=20, what='the arm to settle')
    held = np.array(joints[-1].position)
    pub.publish(_trajectory(JOINTS, [np.full(6, np.nan)], [0.5]))
    count = len(joints)
    # The error log is throttled (one line per 2 s); wait past it before the next bad message.
    wait_for(lambda: len(joints) > count + 70, timeout=20, what='2.3 s of joint states')
    pub.publish(_trajectory(['elbow', 'gripper'], [[0.0, 0.0]], [0.5]))
    count = len(joints)
    wait_for(lambda: len(joints) > count + 30, timeout=20, what='1 s of joint states')
    assert np.abs(np.array(joints[-1].position) - held)[:5].max() < 0.01
    assert 'rejected JointTrajectory: positions contain NaN' in ros_processes.log('sim')
    assert 'unknown joints' in ros_processes.log('sim')
