"""Interfaces cross real DDS between separate processes, on an isolated loopback domain."""

import threading
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / 'ros_scripts'

pytestmark = pytest.mark.ros


def test_event_command_crosses_processes(ros_processes, ros_node, wait_for):
    from wallwm_msgs.msg import EventCommand

    received: list[EventCommand] = []
    ros_node.create_subscription(EventCommand, 'event_command', received.append, 10)
    ros_processes.start_python(SCRIPTS / 'event_command_talker.py', '15', name='talker')

    wait_for(lambda: received, timeout=15, what='an EventCommand from the talker process')
    msg = received[0]
    assert msg.mode == EventCommand.MODE_EVENT
    assert msg.instruction == 'put the red cube in the bin'
    assert msg.event_text == 'grasp the red cube'
    assert msg.max_duration.sec == 4
    assert msg.header.stamp.sec > 0


def _start_server_and_client(ros_processes, ros_node, wait_for):
    from rclpy.action import ActionClient

    from wallwm_msgs.action import ExecuteEvent

    ros_processes.start_python(SCRIPTS / 'execute_event_server.py', name='server')
    client = ActionClient(ros_node, ExecuteEvent, 'execute_event')
    wait_for(lambda: client.server_is_ready(), timeout=15, what='the ExecuteEvent server')
    return client, ExecuteEvent


def _send(client, goal):
    feedback = []
    done = threading.Event()
    handle_box = {}

    def on_goal(future):
        handle_box['handle'] = future.result()
        done.set()

    client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback)) \
        .add_done_callback(on_goal)
    assert done.wait(10), 'goal was not answered'
    return handle_box['handle'], feedback


def test_execute_event_round_trip_with_feedback(ros_processes, ros_node, wait_for):
    client, ExecuteEvent = _start_server_and_client(ros_processes, ros_node, wait_for)
    handle, feedback = _send(client, ExecuteEvent.Goal(event_text='lift the red cube'))
    assert handle.accepted

    result_future = handle.get_result_async()
    result = wait_for(result_future.result, timeout=15, what='the result')
    assert result.result.success
    assert result.result.reason == 'boundary: lift the red cube'
    wait_for(lambda: len(feedback) >= 10, timeout=5, what='feedback messages')
    steps = [f.steps_executed for f in feedback]
    assert steps == sorted(steps) and steps[-1] == 20


def test_execute_event_cancel_is_honoured(ros_processes, ros_node, wait_for):
    from action_msgs.msg import GoalStatus

    client, ExecuteEvent = _start_server_and_client(ros_processes, ros_node, wait_for)
    handle, feedback = _send(client, ExecuteEvent.Goal(event_text='release the red cube'))
    result_future = handle.get_result_async()
    wait_for(lambda: feedback, timeout=10, what='first feedback')
    handle.cancel_goal_async()

    result = wait_for(result_future.result, timeout=10, what='the result')
    assert result.status == GoalStatus.STATUS_CANCELED
    assert not result.result.success and result.result.reason == 'canceled'
    assert max(f.steps_executed for f in feedback) < 20
