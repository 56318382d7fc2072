"""Asynchronous inference: one worker thread computes the next plan while control runs.

The control loop submits a job and polls for its result on later ticks; it never waits. Jobs
carry a generation number: after a reset, cancel or new event, results of older jobs are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobResult:
    tag: Any                 # what the submitter attached (e.g. the step the observation is from)
    value: Any = None        # the job's return value
    error: Exception | None = None


class InferenceWorker:
    """A single background thread running at most one job at a time."""

    def __init__(self, name: str = 'wallwm-inference'):
        self._cond = threading.Condition()
        self._job: tuple[int, Any, Callable[[], Any]] | None = None
        self._result: tuple[int, JobResult] | None = None
        self._busy = False
        self._generation = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or self._job is not None

    def submit(self, tag: Any, job: Callable[[], Any]) -> bool:
        """Start `job` unless one is running or queued; False means try again on a later tick."""
        with self._cond:
            if self._closed or self._busy or self._job is not None:
                return False
            self._job = (self._generation, tag, job)
            self._cond.notify_all()
            return True

    def poll(self) -> JobResult | None:
        """The finished job's result, once; None while running or when it was invalidated."""
        with self._cond:
            if self._result is None:
                return None
            generation, result = self._result
            self._result = None
            return result if generation == self._generation else None

    def invalidate(self) -> None:
        """Forget queued and running jobs: their results will not be delivered."""
        with self._cond:
            self._generation += 1
            self._job = None
            self._result = None

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job runs (for shutdown and tests, never in the control loop)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._job is None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._job = None
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._job is not None)
                if self._closed:
                    return
                generation, tag, job = self._job
                self._job = None
                self._busy = True
            try:
                result = JobResult(tag=tag, value=job())
            except Exception as exc:  # noqa: BLE001 -- delivered to the control loop as a hold
                result = JobResult(tag=tag, error=exc)
            with self._cond:
                self._busy = False
                if generation == self._generation:
                    self._result = (generation, result)
                self._cond.notify_all()
