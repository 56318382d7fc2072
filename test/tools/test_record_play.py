"""Recorder and player nodes move real messages between real processes and real rosbag2 files."""

import signal
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def test_recorder_writes_an_mcap_bag_with_our_and_standard_types(
    ros_processes, ros_node, tmp_path, wait_for
):
    from rosbags.highlevel import AnyReader
    from sensor_msgs.msg import JointState

    from wallwm_msgs.msg import EventStatus
    from wallwm_tools.bag_types import typestore

    bag = tmp_path / 'run'
    recorder = ros_processes.start(
        [
            _exe('recorder'),
            '--ros-args',
            '-p',
            f'output:={bag}',
            '-p',
            'topics:=[/joint_states, /wallwm_policy/status]',
        ],
        name='recorder',
    )
    joints = ros_node.create_publisher(JointState, '/joint_states', 10)
    status = ros_node.create_publisher(EventStatus, '/wallwm_policy/status', 10)
    wait_for(
        lambda: joints.get_subscription_count() and status.get_subscription_count(),
        timeout=20,
        what='the recorder to subscribe',
    )
    for i in range(20):
        joints.publish(JointState(name=JOINTS, position=[0.01 * i] * 6))
        status.publish(
            EventStatus(
                event_text='grasp the red cube', event_index=i, state=EventStatus.STATE_RUNNING
            )
        )
        time.sleep(0.02)
    time.sleep(0.5)
    # Ctrl-C under the launcher arrives twice: from the terminal and forwarded by the launcher.
    recorder.send_signal(signal.SIGINT)
    time.sleep(0.01)
    recorder.send_signal(signal.SIGINT)
    assert recorder.wait(timeout=10) == 0, ros_processes.log('recorder')

    with AnyReader([bag], default_typestore=typestore()) as reader:
        by_topic = {}
        for connection, _, raw in reader.messages():
            by_topic.setdefault(connection.topic, []).append(
                reader.deserialize(raw, connection.msgtype)
            )
    assert len(by_topic['/joint_states']) == 20
    assert list(by_topic['/joint_states'][-1].name) == JOINTS
    np.testing.assert_allclose(by_topic['/joint_states'][-1].position, [0.19] * 6)
    assert [m.event_index for m in by_topic['/wallwm_policy/status']] == list(range(20))
    assert by_topic['/wallwm_policy/status'][0].event_text == 'grasp the red cube'


def test_player_publishes_bag_topics_with_clock(ros_processes, ros_node, tmp_path, wait_for):
    from rosbags.rosbag2 import StoragePlugin
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores
    from rosbags.typesys import get_typestore
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    store = get_typestore(Stores.ROS2_KILTED)
    JointStateT = store.types['sensor_msgs/msg/JointState']
    HeaderT = store.types['std_msgs/msg/Header']
    TimeT = store.types['builtin_interfaces/msg/Time']
    bag = tmp_path / 'recorded'
    t0 = 1_700_000_000 * 10**9
    with Writer(bag, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection('/joint_states', JointStateT.__msgtype__, typestore=store)
        for i in range(30):
            stamp = t0 + i * 33_333_333
            msg = JointStateT(
                header=HeaderT(
                    stamp=TimeT(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=''
                ),
                name=JOINTS,
                position=np.full(6, float(i)),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            writer.write(conn, stamp, store.serialize_cdr(msg, JointStateT.__msgtype__))

    received, clocks = [], []
    ros_node.create_subscription(JointState, '/joint_states', received.append, 50)
    ros_node.create_subscription(Clock, '/clock', clocks.append, 50)
    ros_processes.start(
        [
            _exe('bag_player'),
            '--ros-args',
            '-p',
            f'bag:={bag}',
            '-p',
            'rate:=2.0',
            '-p',
            'start_delay_s:=15.0',  # at most: it starts once both topics have a subscriber
        ],
        name='player',
    )
    last_stamp = t0 + 29 * 33_333_333

    def clock_ns():
        return [c.clock.sec * 10**9 + c.clock.nanosec for c in clocks]

    wait_for(lambda: len(received) == 30, timeout=20, what='all 30 joint states')
    # /clock and /joint_states are separate DDS topics: no delivery order between them.
    wait_for(lambda: last_stamp in clock_ns(), timeout=10, what='/clock at the last bag stamp')
    assert [m.position[0] for m in received] == [float(i) for i in range(30)]
    assert clock_ns() == sorted(clock_ns())
    assert t0 <= clock_ns()[0] and clock_ns()[-1] == last_stamp


def _exe(name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    return f'{get_package_prefix("wallwm_tools")}/lib/wallwm_tools/{name}'
