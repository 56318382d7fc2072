"""The pip-only launcher brings up the sim and the policy as separate processes over DDS, and an
event goal moves the arm."""

import numpy as np
import pytest

pytestmark = pytest.mark.ros


def _launcher():
    from ament_index_python.packages import get_package_prefix

    return f'{get_package_prefix("wallwm_bringup")}/lib/wallwm_bringup/launch'


def test_sim_setup_runs_an_event_goal_and_the_arm_moves(ros_processes, ros_node, tiny_bundle,
                                                        wait_for):
    from rclpy.action import ActionClient
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from wallwm_msgs.action import ExecuteEvent
    from wallwm_msgs.msg import EventStatus

    joints, status = [], []
    ros_node.create_subscription(JointState, '/joint_states', joints.append, qos_profile_sensor_data)
    ros_node.create_subscription(EventStatus, '/wallwm_policy/status', status.append, 10)
    ros_processes.start([_launcher(), 'sim', '--bundle', str(tiny_bundle), '--mode', 'event',
                         '--task-family', 'pick_place', '--seed', '2'], name='launch')
    client = ActionClient(ros_node, ExecuteEvent, '/wallwm_policy/execute_event')
    wait_for(lambda: client.server_is_ready() and joints, timeout=60,
             what='the policy action server and sim joint states')
    wait_for(lambda: status and status[-1].bundle_id, timeout=30, what='an active policy')
    start = np.array(joints[-1].position)

    goal = client.send_goal_async(ExecuteEvent.Goal(event_text='reach above the red cube',
                                                    instruction='put the red cube on the blue pad'))
    handle = wait_for(goal.result, timeout=20, what='goal acceptance')
    assert handle.accepted
    wait_for(lambda: np.abs(np.array(joints[-1].position) - start).max() > 0.02, timeout=30,
             what='the arm to move')
    assert any(s.state == EventStatus.STATE_RUNNING for s in status)
    handle.cancel_goal_async()
