"""Plays a rosbag2 file (mcap or sqlite3) on its original topics, with /clock, at 1x or faster.

Made for debugging the real policy node against a recording: run the node with
`use_sim_time:=true` and it sees the recorded cameras and joints at the recorded times. Works
without rosbag2 (`rosbags` reads the bag; messages are published as recorded bytes).
"""

import time
from pathlib import Path

import rclpy
from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock

from wallwm_tools.bag_types import python_type
from wallwm_tools.bag_types import typestore

CLOCK_TOPIC = '/clock'
CLOCK_PERIOD_S = 0.01  # /clock at 100 Hz of bag time between messages


class PlayerNode(Node):
    def __init__(self):
        super().__init__('wallwm_bag_player')
        self.declare_parameter('bag', '', ParameterDescriptor(
            description='rosbag2 folder or file to play', read_only=True))
        self.declare_parameter('rate', 1.0, ParameterDescriptor(
            description='playback speed factor (2.0 = twice as fast)', read_only=True,
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=100.0)]))
        self.declare_parameter('topics', [''], ParameterDescriptor(
            description='topics to play; empty plays every topic', read_only=True))
        self.declare_parameter('publish_clock', True, ParameterDescriptor(
            description='publish /clock from bag time (for use_sim_time subscribers)',
            read_only=True))
        self.declare_parameter('start_delay_s', 1.0, ParameterDescriptor(
            description='longest wall time to wait, before playing, for every played topic to '
                        'have a subscriber (DDS discovery can take seconds on a loaded machine)',
            read_only=True))
        self.declare_parameter('loop', False, ParameterDescriptor(
            description='start again at the end', read_only=True))
        self.bag = Path(self.get_parameter('bag').value)
        self.rate = float(self.get_parameter('rate').value)
        self.topics = {t for t in self.get_parameter('topics').value if t}
        self.publish_clock = bool(self.get_parameter('publish_clock').value)
        self.start_delay_s = float(self.get_parameter('start_delay_s').value)
        self.loop = bool(self.get_parameter('loop').value)
        self.clock_pub = self.create_publisher(Clock, CLOCK_TOPIC, 10)
        self.publishers_by_topic = {}

    def _wait_for_subscribers(self) -> None:
        publishers = list(self.publishers_by_topic.values())
        publishers += [self.clock_pub] if self.publish_clock else []
        deadline = time.monotonic() + self.start_delay_s
        while time.monotonic() < deadline and rclpy.ok():
            if all(p.get_subscription_count() > 0 for p in publishers):
                return
            time.sleep(0.05)

    def play_once(self) -> int:
        """Publish the bag once in real time / rate; returns the number of messages sent."""
        sent = 0
        with AnyReader([self.bag], default_typestore=typestore()) as reader:
            connections = [c for c in reader.connections
                           if (not self.topics or c.topic in self.topics)
                           and not (self.publish_clock and c.topic == CLOCK_TOPIC)]
            for c in connections:
                if c.topic not in self.publishers_by_topic:
                    self.publishers_by_topic[c.topic] = self.create_publisher(
                        python_type(c.msgtype), c.topic, 50)
            self._wait_for_subscribers()
            bag_start = None
            wall_start = time.monotonic()
            last_clock = None
            for connection, stamp_ns, data in reader.messages(connections=connections):
                if not rclpy.ok():
                    break
                bag_start = stamp_ns if bag_start is None else bag_start
                due = wall_start + (stamp_ns - bag_start) * 1e-9 / self.rate
                while True:  # publish /clock while waiting so sim-time timers keep running
                    now = time.monotonic()
                    bag_now = bag_start + int((now - wall_start) * self.rate * 1e9)
                    if self.publish_clock and (last_clock is None
                                               or bag_now - last_clock >= CLOCK_PERIOD_S * 1e9):
                        self._publish_clock(min(bag_now, stamp_ns))
                        last_clock = bag_now
                    if now >= due:
                        break
                    time.sleep(min(due - now, CLOCK_PERIOD_S / self.rate))
                if self.publish_clock:
                    self._publish_clock(stamp_ns)
                self.publishers_by_topic[connection.topic].publish(data)
                sent += 1
        return sent

    def _publish_clock(self, stamp_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        self.clock_pub.publish(msg)


def main(args=None) -> None:
    rclpy.init(args=args)
    node = PlayerNode()
    try:
        while rclpy.ok():
            count = node.play_once()
            node.get_logger().info(f'played {count} messages from {node.bag}')
            if not node.loop:
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
