"""ROS 2 bridge for the MuJoCo tabletop: cameras, joint states, /clock and task status out;
`trajectory_msgs/JointTrajectory` in (ros2_control's topic and semantics); episode reset service.

The node is the clock: each control period of wall time (scaled by `realtime_factor`) it steps
the simulation once and publishes `/clock`, so other nodes run with `use_sim_time:=true`.
"""

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from wallwm_msgs.msg import TaskStatus
from wallwm_msgs.srv import ResetEpisode
from wallwm_sim.env.scene import JOINT_NAMES
from wallwm_sim.env.scene import SceneConfig
from wallwm_sim.env.tabletop_env import TabletopEnv
from wallwm_sim.trajectory import Trajectory
from wallwm_sim.trajectory import TrajectoryFollower
from wallwm_sim.trajectory import validate

LOG_THROTTLE_S = 2.0


def _stamp(seconds: float) -> Time:
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


class SimBridge(Node):
    def __init__(self):
        super().__init__('wallwm_sim')
        ro = ParameterDescriptor(read_only=True)
        self.declare_parameter(
            'task_family',
            'pick_place',
            ParameterDescriptor(
                description='task family loaded at start (pick_place, stack, bin_ordered, push)'
            ),
        )
        self.declare_parameter(
            'seed', 0, ParameterDescriptor(description='seed of the first episode')
        )
        self.declare_parameter(
            'split',
            'train',
            ParameterDescriptor(
                description="instruction paraphrases: 'train' or 'heldout'", read_only=True
            ),
        )
        self.declare_parameter(
            'image_size',
            128,
            ParameterDescriptor(description='square camera image size [px]', read_only=True),
        )
        self.declare_parameter(
            'realtime_factor',
            1.0,
            ParameterDescriptor(description='simulated seconds per wall second', read_only=True),
        )
        self.declare_parameter(
            'trajectory_topic', '/joint_trajectory_controller/joint_trajectory', ro
        )
        size = int(self.get_parameter('image_size').value)
        self.env = TabletopEnv(SceneConfig(image_height=size, image_width=size))
        self.split = str(self.get_parameter('split').value)
        self.image_pubs = {
            cam: self.create_publisher(Image, f'camera/{cam}/image_raw', qos_profile_sensor_data)
            for cam in self.env.config.cameras
        }
        self.joint_pub = self.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self.clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.status_pub = self.create_publisher(TaskStatus, 'sim/task_status', 10)
        self.create_subscription(
            JointTrajectory, self.get_parameter('trajectory_topic').value, self._on_trajectory, 10
        )
        self.create_service(ResetEpisode, 'sim/reset', self._on_reset)
        self.clock_offset = 0.0  # /clock never jumps back: episodes continue the timeline
        self.obs = None
        self._reset(
            int(self.get_parameter('seed').value), str(self.get_parameter('task_family').value)
        )
        period = (
            1.0
            / self.env.config.control_rate_hz
            / float(self.get_parameter('realtime_factor').value)
        )
        self.create_timer(period, self._step)

    def _reset(self, seed: int, family: str) -> None:
        if self.obs is not None:
            self.clock_offset += self.obs.time
        obs = self.env.reset(seed, family, self.split)
        self.seed = seed
        self.follower = TrajectoryFollower(list(JOINT_NAMES), obs.state)
        self.obs = obs
        self.get_logger().info(f'episode {family} seed={seed}: "{self.env.instruction}"')

    def _on_reset(self, request, response):
        family = request.task_family or self.env.task_family
        try:
            self._reset(int(request.seed), family)
        except ValueError as error:
            response.success, response.message = False, str(error)
            return response
        response.success, response.instruction = True, self.env.instruction
        return response

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        positions = [list(p.positions) for p in msg.points]
        velocities = [list(p.velocities) for p in msg.points]
        reason = validate(list(msg.joint_names), list(JOINT_NAMES), times, positions, velocities)
        if reason is not None:
            self.get_logger().error(
                f'rejected JointTrajectory: {reason}; holding position',
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            # Stop where the controller is now: the current command, so gravity does not sag it.
            self.follower.hold(self.follower.command(self._now()))
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        start = self._now() if stamp == 0.0 else stamp  # zero stamp: start now
        index = np.array([JOINT_NAMES.index(n) for n in msg.joint_names])
        self.follower.add(Trajectory(start, index, np.asarray(times), np.asarray(positions)))

    def _now(self) -> float:
        return self.clock_offset + self.obs.time

    def _step(self) -> None:
        command = self.follower.command(self._now())
        self.obs = self.env.step(command)
        stamp = _stamp(self._now())
        self.clock_pub.publish(Clock(clock=stamp))
        joints = JointState(name=list(JOINT_NAMES), position=self.obs.state.astype(float).tolist())
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        for cam, image in self.obs.images.items():
            msg = Image(
                height=image.shape[0],
                width=image.shape[1],
                encoding='rgb8',
                step=image.shape[1] * 3,
                data=image.tobytes(),
            )
            msg.header.stamp, msg.header.frame_id = stamp, f'{cam}_camera'
            self.image_pubs[cam].publish(msg)
        status = TaskStatus(
            task_family=self.env.task_family,
            instruction=self.env.instruction,
            seed=self.seed,
            step=self.env.step_count,
            success=self.env.success(),
        )
        status.header.stamp = stamp
        self.status_pub.publish(status)

    def destroy_node(self):
        self.env.close()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = SimBridge()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
