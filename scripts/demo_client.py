"""The demo's operator: resets the sim, sends each next-event description as an ExecuteEvent goal
(event mode with the expert's event text), and records what came back over ROS 2."""

import threading
import time
from dataclasses import dataclass
from dataclasses import field

import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState

from wallwm_msgs.action import ExecuteEvent
from wallwm_msgs.msg import EventStatus
from wallwm_msgs.msg import TaskStatus
from wallwm_msgs.srv import ResetEpisode
from wallwm_sim.env.tabletop_env import TabletopEnv

FRAME_EVERY = 3  # keep every third camera frame for the GIF


@dataclass
class EventRun:
    caption: str
    start: float
    end: float
    reason: str
    success: bool


@dataclass
class EpisodeRun:
    family: str
    seed: int
    instruction: str
    success: bool = False
    events: list[EventRun] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    joint_times: list[float] = field(default_factory=list)
    joints: list[np.ndarray] = field(default_factory=list)
    status_times: list[float] = field(default_factory=list)
    boundary: list[float] = field(default_factory=list)


class DemoClient:
    def __init__(self):
        self.node = rclpy.create_node('wallwm_demo')
        self.episode: EpisodeRun | None = None
        self.last_task = None
        self.t0 = time.monotonic()
        self._frame_count = 0
        self.node.create_subscription(Image, '/camera/front/image_raw', self._on_image,
                                      qos_profile_sensor_data)
        self.node.create_subscription(JointState, '/joint_states', self._on_joints,
                                      qos_profile_sensor_data)
        self.node.create_subscription(EventStatus, '/wallwm_policy/status', self._on_status, 10)
        self.node.create_subscription(TaskStatus, '/sim/task_status', self._on_task, 10)
        self.reset = self.node.create_client(ResetEpisode, '/sim/reset')
        self.goals = ActionClient(self.node, ExecuteEvent, '/wallwm_policy/execute_event')
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _on_image(self, msg: Image) -> None:
        self._frame_count += 1
        if self.episode is not None and self._frame_count % FRAME_EVERY == 0:
            self.episode.frames.append(
                np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3).copy())

    def _on_joints(self, msg: JointState) -> None:
        if self.episode is not None:
            self.episode.joint_times.append(self.now())
            self.episode.joints.append(np.array(msg.position))

    def _on_status(self, msg: EventStatus) -> None:
        if self.episode is not None:
            self.episode.status_times.append(self.now())
            self.episode.boundary.append(msg.boundary_probability)

    def _on_task(self, msg: TaskStatus) -> None:
        self.last_task = msg

    def wait(self, future, timeout: float):
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError('no answer from the nodes; see nodes.log')
            time.sleep(0.02)
        return future.result()

    def run_episode(self, family: str, seed: int, event_timeout: float) -> EpisodeRun:
        response = self.wait(self.reset.call_async(ResetEpisode.Request(seed=seed,
                                                                        task_family=family)), 20)
        if not response.success:
            raise RuntimeError(response.message)
        with TabletopEnv(render=False) as env:  # the expert's event text for this episode
            env.reset(seed, family, 'heldout')
            captions = [e.caption for e in env.episode.plan]
        self.episode = episode = EpisodeRun(family, seed, response.instruction)
        print(f'[demo] {family} seed {seed}: "{response.instruction}"', flush=True)
        for caption in captions:
            goal = ExecuteEvent.Goal(event_text=caption, instruction=response.instruction)
            goal.timeout.sec = int(event_timeout)
            start = self.now()
            handle = self.wait(self.goals.send_goal_async(goal), 10)
            result = self.wait(handle.get_result_async(), event_timeout + 10).result
            episode.events.append(EventRun(caption, start, self.now(), result.reason,
                                           result.success))
            print(f'[demo]   {caption!r}: {result.reason}', flush=True)
        time.sleep(0.5)
        episode.success = bool(self.last_task and self.last_task.success)
        self.episode = None
        return episode


def run_episodes(families: list[str], seed: int, event_timeout: float) -> list[EpisodeRun]:
    rclpy.init()
    client = DemoClient()
    try:
        deadline = time.monotonic() + 90
        while not (client.goals.server_is_ready() and client.reset.service_is_ready()):
            if time.monotonic() > deadline:
                raise TimeoutError('the policy and sim did not come up; see nodes.log')
            time.sleep(0.1)
        return [client.run_episode(family, seed + i, event_timeout)
                for i, family in enumerate(families)]
    finally:
        client.executor.shutdown()
        client.node.destroy_node()
        rclpy.try_shutdown()
