#!/usr/bin/env python3
"""Benchmark the policy node at 30 Hz: inference time and node overhead, median and p99.

Starts the policy node in its own process (real DDS on loopback), publishes two cameras at the
bundle's image size plus joint states at the control rate from this process (the arm follows
every command), keeps a goal running in each mode, and reads the node's own timing from
/diagnostics after `--seconds` (its windows hold the last 300 samples):

- inference: wall time of the per-step graphs (runs in the node's worker thread);
- overhead: per control frame, the input callbacks (image/joint conversion, sync buffers) plus
  the control tick (assemble, controller, message build, publish) - callback -> publish without
  the inference, which never sits on that path;
- control rate and `queue_starved_ticks` (ticks where the model had not delivered the next plan
  in time: 0 means it keeps up with the execution horizon).

Usage (after `. scripts/env.sh`):
  scripts/bench_policy.py --bundle PATH          # a trained bundle
  scripts/bench_policy.py --config default       # export the default architecture, untrained
                                                 # weights (latency does not depend on them)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LIMITS_YAML = REPO / 'src' / 'wallwm_policy' / 'config' / 'so101_limits.yaml'
FASTDDS_PROFILE = REPO / 'test' / 'fastdds_loopback.xml'
NODE = '/wallwm_policy'
INSTRUCTION = 'put the red cube in the bin'
EVENT = 'reach above the red cube'


def export_untrained(config: str, out: Path) -> Path:
    """The `config` architecture with freshly initialised weights, exported as a bundle."""
    import torch
    from wallwm_train.config import load_config
    from wallwm_train.export import export_bundle
    from wallwm_train.samples import NormStats
    from wallwm_train.train import build_model

    torch.set_num_threads(2)
    cfg = load_config(config)
    model = build_model(cfg, None, seed=0)
    j = cfg.model.num_joints
    norm = NormStats(np.zeros(j, np.float32), np.ones(j, np.float32),
                     np.zeros(j, np.float32), np.ones(j, np.float32))
    return export_bundle(model, cfg, norm, out, control_rate_hz=30.0)


def loopback_env(log_dir: str) -> dict[str, str]:
    return {**os.environ, 'ROS_DOMAIN_ID': str(random.SystemRandom().randint(101, 200)),
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
            'FASTDDS_DEFAULT_PROFILES_FILE': str(FASTDDS_PROFILE),
            'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp', 'ROS_LOG_DIR': log_dir,
            'PYTHONUNBUFFERED': '1'}


class Rig:
    """Cameras + joint states at the control rate; the arm goes wherever it is commanded."""

    def __init__(self, node, manifest: dict, rate_hz: float):
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self.node, self.period = node, 1.0 / rate_hz
        self.joints = manifest['joint_names']
        self.position = np.zeros(len(self.joints))
        self.commands = 0
        cams = manifest['cameras']
        h, w = cams[0]['height'], cams[0]['width']
        rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        self.image = Image(height=h, width=w, encoding='rgb8', step=w * 3, data=rgb.tobytes())
        self.image_pubs = [node.create_publisher(Image, f'camera/{c["name"]}/image_raw',
                                                 qos_profile_sensor_data) for c in cams]
        self.joint_pub = node.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self._JointState = JointState
        node.create_subscription(JointTrajectory, '/joint_trajectory_controller/joint_trajectory',
                                 self._on_command, 50)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_command(self, msg) -> None:
        self.position = np.array(msg.points[0].positions)
        self.commands += 1

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            stamp = self.node.get_clock().now().to_msg()
            for pub in self.image_pubs:
                self.image.header.stamp = stamp
                pub.publish(self.image)
            msg = self._JointState(name=self.joints, position=self.position.tolist())
            msg.header.stamp = stamp
            self.joint_pub.publish(msg)
            next_at += self.period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f'timed out waiting for {what}')


def bench_mode(bundle: Path, manifest: dict, mode: str, seconds: float, threads: int,
               spinning: bool) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor

    from wallwm_msgs.action import ExecuteEvent
    from wallwm_msgs.action import ExecuteInstruction

    log_dir = tempfile.mkdtemp(prefix='wallwm-bench-')
    env = loopback_env(log_dir)
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'FASTDDS_DEFAULT_PROFILES_FILE', 'ROS_LOG_DIR')})
    node_proc = subprocess.Popen(
        [sys.executable, '-m', 'wallwm_policy.nodes.policy_node', '--ros-args',
         '--params-file', str(LIMITS_YAML), '-p', f'bundle_path:={bundle}',
         '-p', 'autostart:=true', '-p', f'mode:={mode}',
         '-p', f'inference.intra_op_threads:={threads}',
         '-p', f'inference.allow_spinning:={str(spinning).lower()}'],
        env=env, stdout=open(Path(log_dir) / 'node.log', 'w'), stderr=subprocess.STDOUT,
        start_new_session=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('wallwm_bench', context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    diagnostics = []
    node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    rig = Rig(node, manifest, manifest['control_rate_hz'])
    try:
        if mode == 'event':
            client = ActionClient(node, ExecuteEvent, f'{NODE}/execute_event')
        else:
            client = ActionClient(node, ExecuteInstruction, f'{NODE}/execute_instruction')
        wait(client.server_is_ready, 60, 'the policy node')
        time.sleep(1.0)                              # sensor streams matched
        start, commands0 = time.monotonic(), rig.commands
        goal_future, result_future = None, None
        while time.monotonic() - start < seconds:
            if goal_future is not None and result_future is None and goal_future.done():
                result_future = goal_future.result().get_result_async()
            if goal_future is None or (result_future is not None and result_future.done()):
                # event goals end at their boundary: send the next one, as a planner would
                goal = (ExecuteEvent.Goal(event_text=EVENT, instruction=INSTRUCTION)
                        if mode == 'event' else ExecuteInstruction.Goal(instruction=INSTRUCTION))
                goal_future, result_future = client.send_goal_async(goal), None
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        command_rate = (rig.commands - commands0) / elapsed
        count = len(diagnostics)
        wait(lambda: len(diagnostics) > count, 5, 'fresh diagnostics')
        values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
    finally:
        rig.stop()
        os.killpg(node_proc.pid, signal.SIGINT)
        try:
            node_proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(node_proc.pid, signal.SIGKILL)
        executor.shutdown(2)
        node.destroy_node()
        context.try_shutdown()
    return {'mode': mode, 'command_rate_hz': command_rate, **values}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--bundle', type=Path, help='bundle folder')
    source.add_argument('--config', help='export this training config untrained (e.g. default)')
    parser.add_argument('--modes', nargs='*', help='modes to run (default: all offered)')
    parser.add_argument('--seconds', type=float, default=15.0, help='per mode (>= 10 fills the '
                        "node's 300-sample windows at 30 Hz)")
    parser.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    parser.add_argument('--allow-spinning', action='store_true',
                        help='let idle ONNX Runtime threads busy-wait (node default: off)')
    args = parser.parse_args(argv)

    bundle = args.bundle
    if bundle is None:
        bundle = Path(tempfile.mkdtemp(prefix='wallwm-bench-bundle-')) / args.config
        t0 = time.monotonic()
        export_untrained(args.config, bundle)
        print(f'exported the {args.config!r} architecture (untrained) to {bundle} in '
              f'{time.monotonic() - t0:.0f} s')
    manifest = json.loads((bundle / 'manifest.json').read_text())
    cams = manifest['cameras']
    print(f'bundle {manifest["bundle_id"]}: {len(cams)} cameras {cams[0]["height"]}x'
          f'{cams[0]["width"]}, modes {list(manifest["modes"])}, {os.cpu_count()} CPU cores, '
          f'ORT threads {args.threads} (spinning {"on" if args.allow_spinning else "off"}), '
          f'{manifest["control_rate_hz"]:.0f} Hz')
    rows = [bench_mode(bundle, manifest, mode, args.seconds, args.threads, args.allow_spinning)
            for mode in (args.modes or list(manifest['modes']))]
    header = (f'{"mode":8} {"infer p50":>9} {"p99":>7} {"overhead p50":>12} {"p99":>7} '
              f'{"tick p50":>8} {"ctrl Hz":>7} {"cmd Hz":>6} {"starved":>7}')
    print(header + '   (ms unless noted)')
    for r in rows:
        print(f'{r["mode"]:8} {float(r["inference_ms_p50"]):9.2f} '
              f'{float(r["inference_ms_p99"]):7.2f} {float(r["overhead_ms_p50"]):12.3f} '
              f'{float(r["overhead_ms_p99"]):7.3f} {float(r["tick_ms_p50"]):8.3f} '
              f'{float(r["control_rate_hz"]):7.2f} {r["command_rate_hz"]:6.1f} '
              f'{r["queue_starved_ticks"]:>7}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
