"""ROS messages <-> numpy and core results; nothing here decides anything."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
from trajectory_msgs.msg import JointTrajectory
from trajectory_msgs.msg import JointTrajectoryPoint

from wallwm_msgs.msg import ActionChunk
from wallwm_msgs.msg import EventStatus
from wallwm_policy.core.controller import PlanRecord
from wallwm_policy.core.controller import PolicyController
from wallwm_policy.core.controller import Status
from wallwm_policy.core.preprocess import compressed_to_rgb
from wallwm_policy.core.preprocess import raw_image_to_rgb
from wallwm_policy.core.stats import Window


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def duration(seconds: float) -> Duration:
    nanos = int(round(max(0.0, seconds) * 1e9))
    return Duration(sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000)


def duration_seconds(msg: Duration) -> float:
    return msg.sec + msg.nanosec * 1e-9


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; raises InputError."""
    return raw_image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)


def compressed_image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage -> (H, W, 3) uint8 RGB; raises InputError."""
    return compressed_to_rgb(msg.format, msg.data)


def trajectory(joint_names, command: np.ndarray, step_period: float) -> JointTrajectory:
    """One point, reached one control period from now (zero header stamp: start now)."""
    point = JointTrajectoryPoint(positions=command.tolist(),
                                 time_from_start=duration(step_period))
    return JointTrajectory(joint_names=list(joint_names), points=[point])


def status_msg(status: Status, stamp, bundle_id: str) -> EventStatus:
    msg = EventStatus(mode=status.mode, state=status.state, hold_reason=status.hold_reason,
                      instruction=status.instruction, event_text=status.event_text,
                      event_index=status.event_index, progress=float(status.progress),
                      boundary_probability=float(status.boundary_probability),
                      steps_executed=status.steps_executed, bundle_id=bundle_id,
                      inference_latency_ms=float(status.inference_ms))
    msg.header.stamp = stamp
    return msg


def chunk_msg(record: PlanRecord, joint_names, step_period: float) -> ActionChunk:
    steps, joints = record.plan.actions.shape
    msg = ActionChunk(joint_names=list(joint_names),
                      positions=record.plan.actions.reshape(-1).tolist(),
                      num_steps=steps, num_joints=joints,
                      boundary_probability=record.plan.boundary.astype(np.float32).tolist(),
                      step_period=duration(step_period), event_index=record.event_index,
                      chunk_index=record.chunk_index)
    nanos = int(round(record.stamp * 1e9))
    msg.header.stamp.sec, msg.header.stamp.nanosec = nanos // 10 ** 9, nanos % 10 ** 9
    return msg


def diagnostics(controller: PolicyController, times: dict[str, Window], rejected: int,
                input_problem: str, stamp) -> DiagnosticArray:
    """Rates, latency percentiles (ms) and input problems, as one DiagnosticStatus."""
    status = controller.status()
    problem = status.hold_reason or input_problem
    level = DiagnosticStatus.WARN if problem else DiagnosticStatus.OK
    values = {'bundle_id': controller.bundle.manifest.bundle_id,
              'providers': ','.join(controller.bundle.providers.providers),
              'mode': status.mode, 'state': status.state, 'hold_reason': status.hold_reason,
              'control_rate_hz': f"{times['ticks_at'].rate_hz():.2f}",
              'input_problem': input_problem, 'inputs_rejected': rejected,
              'queue_starved_ticks': controller.starved_ticks}
    # overhead: per control frame, input callbacks + the tick (inference runs off this path)
    for key in ('inference', 'overhead', 'tick', 'callback'):
        for q in (50, 99):
            values[f'{key}_ms_p{q}'] = f'{times[key].percentile(q) * 1e3:.3f}'
    msg = DiagnosticArray(status=[DiagnosticStatus(
        level=level, name='wallwm_policy: control', message=problem or 'ok',
        hardware_id='wallwm_policy',
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])])
    msg.header.stamp = stamp
    return msg
