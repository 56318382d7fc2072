"""The pip-only launcher brings up the sim, the policy and the recorder as separate processes over
DDS; an event goal moves the arm, and the recorded run converts into a dataset that validates."""

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _launcher():
    from ament_index_python.packages import get_package_prefix

    return f'{get_package_prefix("wallwm_bringup")}/lib/wallwm_bringup/launch'


def test_sim_setup_runs_an_event_goal_and_the_recorded_run_converts(
    ros_processes, ros_node, tiny_bundle, wait_for, tmp_path
):
    from rclpy.action import ActionClient
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState

    from wallwm_msgs.action import ExecuteEvent
    from wallwm_msgs.msg import EventStatus

    joints, status = [], []
    ros_node.create_subscription(
        JointState, '/joint_states', joints.append, qos_profile_sensor_data
    )
    ros_node.create_subscription(EventStatus, '/wallwm_policy/status', status.append, 10)
    ros_processes.start(
        [
            _launcher(),
            'sim',
            '--bundle',
            str(tiny_bundle),
            '--mode',
            'event',
            '--task-family',
            'pick_place',
            '--seed',
            '2',
            '--record',
            str(tmp_path / 'run'),
        ],
        name='launch',
    )
    client = ActionClient(ros_node, ExecuteEvent, '/wallwm_policy/execute_event')
    wait_for(
        lambda: client.server_is_ready() and joints,
        timeout=60,
        what='the policy action server and sim joint states',
    )
    wait_for(lambda: status and status[-1].bundle_id, timeout=30, what='an active policy')
    start = np.array(joints[-1].position)

    goal = client.send_goal_async(
        ExecuteEvent.Goal(
            event_text='reach above the red cube', instruction='put the red cube on the blue pad'
        )
    )
    handle = wait_for(goal.result, timeout=20, what='goal acceptance')
    assert handle.accepted
    wait_for(
        lambda: np.abs(np.array(joints[-1].position) - start).max() > 0.02,
        timeout=30,
        what='the arm to move',
    )
    assert any(s.state == EventStatus.STATE_RUNNING for s in status)
    handle.cancel_goal_async()
    count = len(joints)
    wait_for(lambda: len(joints) > count + 30, timeout=20, what='another second of the run')
    ros_processes.stop_all()  # SIGINT: the recorder closes its bag

    from wallwm_train.data.lerobot import LeRobotDataset
    from wallwm_train.data.lerobot import validate
    from wallwm_train.data.rosbag import Profile
    from wallwm_train.data.rosbag import builtin_profile
    from wallwm_train.data.rosbag import convert

    convert(tmp_path / 'run', tmp_path / 'dataset', Profile.load(builtin_profile('so101_sim')))
    assert validate(tmp_path / 'dataset') == []
    dataset = LeRobotDataset(tmp_path / 'dataset')
    assert dataset.num_episodes >= 1 and dataset.info['total_frames'] >= 30
    assert dataset.camera_names == ['front', 'wrist']
