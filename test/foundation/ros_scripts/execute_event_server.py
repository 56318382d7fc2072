"""A minimal ExecuteEvent action server: one goal at a time, feedback every step, honours cancel.

It exercises the interface across processes; the real server is the policy node.
"""

import time

import rclpy
from rclpy.action import ActionServer
from rclpy.action import CancelResponse
from rclpy.action import GoalResponse
from rclpy.executors import ExternalShutdownException
from rclpy.executors import MultiThreadedExecutor

from wallwm_msgs.action import ExecuteEvent

STEPS = 20
STEP_PERIOD_S = 0.05


def execute(goal_handle):
    feedback = ExecuteEvent.Feedback()
    start = time.monotonic()
    for step in range(1, STEPS + 1):
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
            return ExecuteEvent.Result(success=False, reason='canceled')
        time.sleep(STEP_PERIOD_S)
        feedback.steps_executed = step
        feedback.progress = step / STEPS
        feedback.boundary_probability = 1.0 if step == STEPS else 0.0
        goal_handle.publish_feedback(feedback)
    goal_handle.succeed()
    result = ExecuteEvent.Result(
        success=True, reason=f'boundary: {goal_handle.request.event_text}'
    )
    result.duration.nanosec = int((time.monotonic() - start) % 1 * 1e9)
    result.duration.sec = int(time.monotonic() - start)
    return result


def main() -> None:
    rclpy.init()
    node = rclpy.create_node('execute_event_server')
    ActionServer(
        node,
        ExecuteEvent,
        'execute_event',
        execute_callback=execute,
        goal_callback=lambda _: GoalResponse.ACCEPT,
        cancel_callback=lambda _: CancelResponse.ACCEPT,
    )
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
