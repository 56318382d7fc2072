"""Process main loop for a node with long-running goals: spin until SIGINT/SIGTERM, then end the
goals while the ROS context still works and give their results time to reach the clients.

rclpy's own signal handler shuts the context down at once, under running action callbacks; here
the handlers are ours (installed explicitly: a shell starts background jobs with SIGINT ignored).
"""

from __future__ import annotations

import signal
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.executors import MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions

SPIN_TIMEOUT_S = 0.2    # how often the loop checks for a stop signal
FLUSH_S = 0.3           # spinning after the last goal ended, so its result goes out
SHUTDOWN_LIMIT_S = 2.0


def run(make_node, args=None, threads: int = 4) -> None:
    """`make_node()` builds the node; it must offer `end_goals()` and `goals_in_flight()`."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = make_node()
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
    except ExternalShutdownException:
        pass
    finally:
        node.end_goals()
        deadline, flush_until = time.monotonic() + SHUTDOWN_LIMIT_S, None
        while time.monotonic() < deadline and rclpy.ok():
            executor.spin_once(timeout_sec=0.05)
            if not node.goals_in_flight():
                flush_until = flush_until or time.monotonic() + FLUSH_S
                if time.monotonic() > flush_until:
                    break
        executor.shutdown(timeout_sec=SHUTDOWN_LIMIT_S)
        node.destroy_node()
        rclpy.try_shutdown()
