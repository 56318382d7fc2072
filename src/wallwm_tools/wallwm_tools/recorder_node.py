"""Records topics of a run to a rosbag2 (mcap) file without rosbag2: raw CDR in, rosbags out.

Topics that appear late are picked up when they show up in the graph. Messages are written as
received (no deserialisation), stamped with the node's clock, so `use_sim_time` recordings carry
simulation time. Stop with Ctrl-C / SIGINT: the bag is closed properly.
"""

import signal
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer

from wallwm_tools.bag_types import python_type
from wallwm_tools.bag_types import typestore

DEFAULT_TOPICS = [
    '/joint_states',
    '/camera/front/image_raw',
    '/camera/wrist/image_raw',
    '/joint_trajectory_controller/joint_trajectory',
    '/wallwm_policy/status',
    '/wallwm_policy/action_chunk',
    '/sim/task_status',
    '/clock',
]


class RecorderNode(Node):
    def __init__(self):
        super().__init__('wallwm_recorder')
        self.declare_parameter('output', 'wallwm_run', ParameterDescriptor(
            description='bag folder to create (must not exist)', read_only=True))
        self.declare_parameter('topics', DEFAULT_TOPICS, ParameterDescriptor(
            description='topics to record; picked up whenever they appear', read_only=True))
        self._topics = list(self.get_parameter('topics').value)
        output = Path(self.get_parameter('output').value)
        self._store = typestore()
        self._writer = Writer(output, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        self._counts = {}
        # Best effort matches reliable and best-effort (SensorDataQoS) publishers alike.
        self._qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_timer(0.2, self._subscribe_new_topics)
        self.get_logger().info(f'recording {len(self._topics)} topics to {output}')

    def _subscribe_new_topics(self) -> None:
        available = dict(self.get_topic_names_and_types())
        for topic in self._topics:
            if topic in self._connections or topic not in available:
                continue
            msgtype = available[topic][0]
            if msgtype not in self._store.fielddefs:
                self.get_logger().warn(f'{topic}: unknown type {msgtype}, not recorded')
                self._connections[topic] = None
                continue
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store)
            self._connections[topic] = connection
            self._counts[topic] = 0
            self.create_subscription(python_type(msgtype), topic,
                                     lambda data, c=connection: self._write(c, data),
                                     self._qos, raw=True)
            self.get_logger().info(f'recording {topic} [{msgtype}]')

    def _write(self, connection, data: bytes) -> None:
        self._writer.write(connection, self.get_clock().now().nanoseconds, data)
        self._counts[connection.topic] += 1

    def close(self) -> None:
        self._writer.close()
        summary = ', '.join(f'{t}: {n}' for t, n in self._counts.items())
        self.get_logger().info(f'bag closed ({summary or "no messages"})')


def main(args=None) -> None:
    rclpy.init(args=args)
    node = RecorderNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C reaches us twice (the terminal's process group and the launcher forwarding it);
        # a second interrupt while closing would leave a bag without metadata.yaml, unreadable.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
