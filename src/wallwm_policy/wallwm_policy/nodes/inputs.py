"""The policy node's sensor side: camera and joint-state subscriptions (SensorDataQoS) feeding
the core's stamp synchroniser. Conversion happens here, in the callback, so a malformed message
is rejected with its reason as soon as it arrives."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from functools import partial

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState

from wallwm_policy.core.preprocess import InputError
from wallwm_policy.core.preprocess import JointMapper
from wallwm_policy.core.stats import Window
from wallwm_policy.core.sync import JOINT_STATES
from wallwm_policy.core.sync import ObservationSync
from wallwm_policy.core.sync import SyncConfig
from wallwm_policy.nodes import convert


class SensorInputs:
    """Subscribes to the cameras (bundle order) and joint states; `sync` assembles observations."""

    def __init__(self, node, cameras: Sequence[str], camera_topics: Sequence[str],
                 compressed: bool, joint_names: Sequence[str], joint_states_topic: str,
                 config: SyncConfig, callback_group):
        self.sync = ObservationSync(cameras, config)
        self.callback_times = Window()
        self._pending_s = 0.0      # callback time since the last drain()
        self._lock = threading.Lock()
        self._mapper = JointMapper(joint_names)
        self.subscriptions = [
            node.create_subscription(
                CompressedImage if compressed else Image,
                topic + '/compressed' if compressed else topic,
                partial(self._on_image, camera, compressed), qos_profile_sensor_data,
                callback_group=callback_group)
            for camera, topic in zip(cameras, camera_topics, strict=True)]
        self.subscriptions.append(node.create_subscription(
            JointState, joint_states_topic, self._on_joints, qos_profile_sensor_data,
            callback_group=callback_group))

    def _on_image(self, camera: str, compressed: bool, msg) -> None:
        t0 = time.perf_counter()
        stamp = convert.stamp_seconds(msg.header.stamp)
        try:
            to_rgb = convert.compressed_image_to_rgb if compressed else convert.image_to_rgb
            self.sync.add(camera, stamp, to_rgb(msg))
        except InputError as exc:
            self.sync.add(camera, stamp, error=str(exc))
        self._spent(time.perf_counter() - t0)

    def _on_joints(self, msg: JointState) -> None:
        t0 = time.perf_counter()
        stamp = convert.stamp_seconds(msg.header.stamp)
        try:
            self.sync.add(JOINT_STATES, stamp, self._mapper.positions(msg.name, msg.position))
        except InputError as exc:
            self.sync.add(JOINT_STATES, stamp, error=str(exc))
        self._spent(time.perf_counter() - t0)

    def _spent(self, seconds: float) -> None:
        self.callback_times.add(seconds)
        with self._lock:
            self._pending_s += seconds

    def drain(self) -> float:
        """Callback time spent since the last call (the input side of a frame's overhead)."""
        with self._lock:
            spent, self._pending_s = self._pending_s, 0.0
        return spent
