"""Publishes EventCommands until a subscriber has been matched and a few messages went out."""

import sys
import time

import rclpy

from wallwm_msgs.msg import EventCommand


def main() -> None:
    rclpy.init()
    node = rclpy.create_node('event_command_talker')
    pub = node.create_publisher(EventCommand, 'event_command', 10)
    deadline = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < deadline:
        msg = EventCommand(mode=EventCommand.MODE_EVENT, instruction='put the red cube in the bin',
                           event_text='grasp the red cube')
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.max_duration.sec = 4
        pub.publish(msg)
        time.sleep(0.05)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    main()
