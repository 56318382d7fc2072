"""The WALL-WM policy as a ROS 2 lifecycle node: a thin shell over `wallwm_policy.core`.

configure: load + verify the bundle, create topics, actions, services. activate: warm up, start
the control timer. deactivate: hold the arm where it is. Inference runs in the core's worker
thread, so the control timer, the subscriptions and the action servers (each in its own callback
group on a MultiThreadedExecutor) never wait for the model.
"""

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer
from rclpy.action import CancelResponse
from rclpy.action import GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from trajectory_msgs.msg import JointTrajectory

from wallwm_msgs.action import ExecuteEvent
from wallwm_msgs.action import ExecuteInstruction
from wallwm_msgs.msg import ActionChunk
from wallwm_msgs.msg import EventCommand
from wallwm_msgs.msg import EventStatus
from wallwm_msgs.srv import ResetPolicy
from wallwm_msgs.srv import SetMode
from wallwm_policy.core import manifest as mf
from wallwm_policy.core.bundle import BundleError
from wallwm_policy.core.bundle import load_bundle
from wallwm_policy.core.controller import STATE_HOLDING
from wallwm_policy.core.controller import PolicyController
from wallwm_policy.core.safety import JointLimits
from wallwm_policy.core.stats import Window
from wallwm_policy.nodes import convert
from wallwm_policy.nodes import params
from wallwm_policy.nodes.goals import GoalBridge
from wallwm_policy.nodes.inputs import SensorInputs
from wallwm_policy.nodes.params import TRANSPORT_COMPRESSED
from wallwm_policy.nodes.run import run

GOAL_END_TIMEOUT_S = 1.0
# Parameters that may change while running, and the ControlConfig field each one sets.
LIVE_PARAMETERS = {'chunk.execute_steps': 'execute_steps',
                   'chunk.approach_steps': 'approach_steps',
                   'event.boundary_threshold': 'boundary_threshold',
                   'inference.noise_scale': 'noise_scale'}


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('wallwm_policy', **kwargs)
        params.declare(self)
        self.add_on_set_parameters_callback(self._on_parameters)
        self._controller = None
        self._timer = None
        self._goal_bridge = GoalBridge(lambda: self._controller, self._now)
        self._times = {k: Window() for k in ('tick', 'overhead', 'inference', 'ticks_at')}
        self._log_at = {}
        self._entities = []           # (destroy function, entity) made in on_configure
        # Lifecycle transitions run on another executor thread than the control callbacks: this
        # lock keeps a transition from destroying what a running tick is using.
        self._guard = threading.Lock()
        self._autostart = None
        if self.get_parameter('autostart').value:
            self._autostart = self.create_timer(0.01, self._autostart_once)

    # ------------------------------------------------------------------ lifecycle

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.settings = s = params.read(self)
            if not s.bundle_path:
                raise ValueError('bundle_path: not set (a folder with manifest.json)')
            bundle = load_bundle(s.bundle_path, s.session)
            m = bundle.manifest
            limits = JointLimits.from_profile(m.joint_names, s.limit_names, s.lower, s.upper,
                                              s.max_velocity)
            topics = s.camera_topics or tuple(f'camera/{c.name}/image_raw' for c in m.cameras)
            if len(topics) != len(m.cameras):
                raise ValueError(f'cameras.topics: {len(topics)} topics for cameras '
                                 f'{[c.name for c in m.cameras]}')
            self._controller = PolicyController(bundle, limits, s.control, s.mode or None,
                                                on_outcome=self._goal_bridge.on_outcome)
        except (BundleError, ValueError) as exc:
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f'bundle {m.bundle_id}: modes {list(self._controller.modes)}; '
                               f'{bundle.providers.reason}')
        event = m.modes.get(mf.MODE_EVENT)
        if event is not None and not event.reads_instruction:
            self.get_logger().info('event mode acts on the event text alone (the bundle was '
                                   'trained without the instruction in event mode)')
        self._period = 1.0 / m.control_rate_hz
        control, self._goals = MutuallyExclusiveCallbackGroup(), ReentrantCallbackGroup()
        keep = self._keep
        self._inputs = SensorInputs(
            self, [c.name for c in m.cameras], topics, s.transport == TRANSPORT_COMPRESSED,
            m.joint_names, s.joint_states_topic, s.sync, ReentrantCallbackGroup())
        for sub in self._inputs.subscriptions:
            keep(self.destroy_subscription, sub)
        keep(self.destroy_subscription, self.create_subscription(
            EventCommand, '~/event_command', self._on_command, 10, callback_group=self._goals))
        self._traj_pub = keep(self.destroy_lifecycle_publisher, self.create_lifecycle_publisher(
            JointTrajectory, s.command_topic, 10))
        self._status_pub = keep(self.destroy_lifecycle_publisher,
                                self.create_lifecycle_publisher(EventStatus, '~/status', 10))
        self._chunk_pub = keep(self.destroy_lifecycle_publisher, self.create_lifecycle_publisher(
            ActionChunk, '~/action_chunk', 10))
        self._diag_pub = keep(self.destroy_publisher,
                              self.create_publisher(DiagnosticArray, '/diagnostics', 10))
        for action, name, execute in (
                (ExecuteEvent, '~/execute_event', self._goal_bridge.execute_event),
                (ExecuteInstruction, '~/execute_instruction',
                 self._goal_bridge.execute_instruction)):
            keep(ActionServer.destroy, ActionServer(
                self, action, name, execute, goal_callback=self._accept_goal,
                cancel_callback=self._accept_cancel, callback_group=self._goals))
        keep(self.destroy_service, self.create_service(
            SetMode, '~/set_mode', self._on_set_mode, callback_group=self._goals))
        keep(self.destroy_service, self.create_service(
            ResetPolicy, '~/reset', self._on_reset, callback_group=self._goals))
        self._control_group = control
        keep(self.destroy_timer, self.create_timer(
            s.diagnostics_period, self._publish_diagnostics, callback_group=control))
        return TransitionCallbackReturn.SUCCESS

    def _keep(self, destroy, entity):
        self._entities.append((destroy, entity))
        return entity

    def on_activate(self, state) -> TransitionCallbackReturn:
        warm = self._controller.warm_up()
        self.get_logger().info('warm-up ' + ', '.join(f'{k} {v * 1e3:.1f} ms'
                                                        for k, v in warm.items()))
        self._timer = self.create_timer(self._period, self._tick,
                                        callback_group=self._control_group)
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_timer()
        self._controller.cancel(reason='deactivated')
        self._publish_hold()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_timer(self) -> None:
        with self._guard:
            if self._timer is not None:
                self.destroy_timer(self._timer)
                self._timer = None

    def _release(self) -> None:
        self.end_goals()
        self._goal_bridge.wait_idle(GOAL_END_TIMEOUT_S)  # their handles use the servers
        with self._guard:
            for destroy, entity in reversed(self._entities):
                destroy(entity)
            self._entities, self._controller = [], None

    def end_goals(self) -> None:
        """Stop control and finish every goal (cleanup, process shutdown)."""
        self._stop_timer()
        with self._guard:
            if self._controller is not None:
                self._controller.close()

    def goals_in_flight(self) -> int:
        return self._goal_bridge.in_flight

    def _autostart_once(self) -> None:
        self.destroy_timer(self._autostart)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ------------------------------------------------------------------ control

    def _tick(self) -> None:
        with self._guard:
            if self._timer is not None:
                self._tick_locked()

    def _tick_locked(self) -> None:
        t0 = time.perf_counter()
        ros_now = self.get_clock().now()
        now = ros_now.nanoseconds * 1e-9
        obs, reason = self._inputs.sync.assemble(now)
        result = self._controller.tick(obs, reason, self._inputs.sync.latest_positions(), now)
        names = self._controller.bundle.manifest.joint_names
        if result.command is not None:
            self._traj_pub.publish(convert.trajectory(names, result.command, self._period))
        bundle_id = self._controller.bundle.manifest.bundle_id
        self._status_pub.publish(convert.status_msg(result.status, ros_now.to_msg(), bundle_id))
        if result.plan is not None:
            self._chunk_pub.publish(convert.chunk_msg(result.plan, names, self._period))
            self._times['inference'].add(result.plan.plan.inference_s)
        if result.status.state == STATE_HOLDING:
            self._throttled('hold', f'holding: {result.status.hold_reason}')
        tick_s = time.perf_counter() - t0
        self._times['tick'].add(tick_s)
        self._times['overhead'].add(tick_s + self._inputs.drain())
        self._times['ticks_at'].add(time.monotonic())

    def _publish_hold(self) -> None:
        command = self._controller.hold_command(self._inputs.sync.latest_positions())
        if command is not None:
            names = self._controller.bundle.manifest.joint_names
            self._traj_pub.publish(convert.trajectory(names, command, self._period))

    def _publish_diagnostics(self) -> None:
        with self._guard:
            if self._controller is not None:
                self._publish_diagnostics_locked()

    def _publish_diagnostics_locked(self) -> None:
        times = {**self._times, 'callback': self._inputs.callback_times}
        now = self.get_clock().now()
        _, input_problem = self._inputs.sync.assemble(now.nanoseconds * 1e-9)
        self._diag_pub.publish(convert.diagnostics(
            self._controller, times, self._inputs.sync.rejected, input_problem, now.to_msg()))

    def _throttled(self, key: str, text: str, period: float = 2.0) -> None:
        if time.monotonic() - self._log_at.get(key, -1e9) >= period:
            self._log_at[key] = time.monotonic()
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ goals

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _accept_goal(self, goal) -> GoalResponse:
        return GoalResponse.ACCEPT if self._timer is not None else GoalResponse.REJECT

    def _accept_cancel(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _on_command(self, msg: EventCommand) -> None:
        if self._timer is None:
            self._throttled('command', 'event_command ignored: the node is not active')
            return
        error = self._goal_bridge.start_command(msg)
        if error:
            self.get_logger().warning(f'event_command rejected: {error}')

    def _on_set_mode(self, request, response):
        response.success, response.message = self._controller.set_mode(request.mode)
        return response

    def _on_reset(self, request, response):
        self._controller.reset()
        self._publish_hold()
        response.success, response.message = True, 'policy reset; holding'
        return response

    def _on_parameters(self, changes: list[Parameter]) -> SetParametersResult:
        if self._controller is None:
            return SetParametersResult(successful=True)
        try:
            self._controller.update_config(**{LIVE_PARAMETERS[p.name]: p.value
                                              for p in changes if p.name in LIVE_PARAMETERS})
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)


def main(args=None) -> None:
    run(PolicyNode, args)


if __name__ == '__main__':
    main()
