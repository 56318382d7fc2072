"""Workspace-wide test harness: keeps every ROS 2 process on this host.

Every ROS process a test starts (and the test process itself) gets a random ``ROS_DOMAIN_ID``,
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, the Fast DDS profile ``test/fastdds_loopback.xml``
(UDPv4 on 127.0.0.1 + shared memory, no builtin transports) and a temporary ``ROS_LOG_DIR``, so
tests send nothing beyond loopback and write nothing under the home directory (DESIGN.md §3).
"""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FASTDDS_PROFILE = REPO_ROOT / 'test' / 'fastdds_loopback.xml'
_SESSION_LOG_DIR = tempfile.mkdtemp(prefix='wallwm-roslog-')


def loopback_ros_env(domain_id: int, log_dir: str) -> dict[str, str]:
    """The environment variables that keep a ROS 2 process on loopback."""
    return {
        'ROS_DOMAIN_ID': str(domain_id),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'FASTDDS_DEFAULT_PROFILES_FILE': str(FASTDDS_PROFILE),
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'ROS_LOG_DIR': log_dir,
        'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl'),
        'MESA_SHADER_CACHE_DISABLE': 'true',
        'PYTHONUNBUFFERED': '1',
    }


def _random_domain_id() -> int:
    # 1..100: valid for Fast DDS port arithmetic and away from the default domain 0.
    return random.SystemRandom().randint(1, 100)


# Anything that touches ROS during collection or in a test without the fixture still stays local.
os.environ.update(loopback_ros_env(_random_domain_id(), _SESSION_LOG_DIR))


@pytest.fixture
def ros_env(monkeypatch, tmp_path) -> dict[str, str]:
    """A fresh isolated domain for this test: set in this process, returned for subprocesses."""
    log_dir = tmp_path / 'ros_log'
    log_dir.mkdir()
    values = loopback_ros_env(_random_domain_id(), str(log_dir))
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


class RosProcesses:
    """Starts processes in their own session and always stops them (SIGINT, then SIGKILL)."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self._env = env
        self._log_dir = log_dir
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, args: list[str], name: str, cwd: Path = REPO_ROOT) -> subprocess.Popen:
        log_path = self._log_dir / f'{name}.log'
        log = open(log_path, 'w')  # noqa: SIM115 -- closed with the process
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._procs.append((name, proc, log_path))
        return proc

    def start_python(self, script: Path, *script_args: str, name: str) -> subprocess.Popen:
        return self.start([sys.executable, str(script), *script_args], name=name)

    def log(self, name: str) -> str:
        for proc_name, _, path in self._procs:
            if proc_name == name:
                return path.read_text(errors='replace')
        raise KeyError(name)

    def stop_all(self, timeout: float = 5.0) -> None:
        for _, proc, _ in self._procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for _, proc, _ in self._procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)

    def dump_logs(self) -> str:
        return '\n'.join(
            f'----- {name} (rc={proc.poll()}) -----\n{path.read_text(errors="replace")}'
            for name, proc, path in self._procs
        )


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def ros_processes(ros_env, tmp_path, request):
    """Start ROS processes on the test's isolated domain; they are stopped after the test."""
    procs = RosProcesses(ros_env, tmp_path)
    yield procs
    procs.stop_all()
    report = getattr(request.node, 'rep_call', None)
    if report is not None and report.failed:
        print(procs.dump_logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f'rep_{report.when}', report)


class SpinningNode:
    """An rclpy node in its own context, spun by a background executor thread."""

    def __init__(self, name: str):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def shutdown(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)


@pytest.fixture
def ros_node(ros_env, request):
    """A spinning rclpy node in the test process, on the test's isolated domain."""
    spinning = SpinningNode(
        f'wallwm_test_{request.node.name[:40]}'.replace('[', '_')
        .replace(']', '_')
        .replace('-', '_')
        .replace('.', '_')
    )
    yield spinning.node
    spinning.shutdown()


def _wait_for(predicate, timeout: float, interval: float = 0.05, what: str = 'condition'):
    """Poll `predicate` until it returns a truthy value; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f'timed out after {timeout:.1f} s waiting for {what}')


@pytest.fixture
def wait_for():
    """`wait_for(predicate, timeout, what=...)`: poll instead of sleeping a fixed time."""
    return _wait_for


@pytest.fixture(scope='session')
def tiny_bundle(tmp_path_factory):
    """A bundle exported by the project's own tiny training config (a few seconds)."""
    from wallwm_train.testing import export_tiny_bundle

    return export_tiny_bundle(tmp_path_factory.mktemp('tiny_bundle') / 'bundle')
