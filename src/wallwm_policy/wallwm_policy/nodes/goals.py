"""Action goals <-> core goals: start one in the controller, stream feedback, honour cancel,
and finish the goal handle with the core's Outcome. Used by the policy node's action servers."""

from __future__ import annotations

import threading
from collections.abc import Callable

from wallwm_msgs.action import ExecuteEvent
from wallwm_msgs.action import ExecuteInstruction
from wallwm_policy.core.controller import REASON_CANCELED
from wallwm_policy.core.controller import Outcome
from wallwm_policy.core.controller import PolicyController
from wallwm_policy.core.manifest import MODE_EVENT
from wallwm_policy.nodes import convert

FEEDBACK_PERIOD_S = 0.1


class GoalBridge:
    """Waits for the core's outcome of each goal an action server started (thread-safe)."""

    def __init__(self, controller: Callable[[], PolicyController | None],
                 now: Callable[[], float]):
        self._controller = controller
        self._now = now
        self._outcomes: dict[int, Outcome | None] = {}
        self._cv = threading.Condition()

    @property
    def in_flight(self) -> int:
        """Goals still executing (their callbacks have not returned yet)."""
        with self._cv:
            return len(self._outcomes)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no goal callback is running (before its action server is destroyed)."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._outcomes, timeout)

    def on_outcome(self, outcome: Outcome) -> None:
        """The controller's outcome callback."""
        with self._cv:
            if outcome.token in self._outcomes:
                self._outcomes[outcome.token] = outcome
                self._cv.notify_all()

    def _run(self, goal_handle, start, feedback) -> tuple[Outcome | None, str]:
        controller = self._controller()
        with self._cv:
            try:
                if controller is None:
                    raise ValueError('the policy is not configured')
                token = start(controller)
            except ValueError as exc:
                goal_handle.abort()
                return None, str(exc)
            self._outcomes[token] = None
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._outcomes[token] is not None, FEEDBACK_PERIOD_S)
                outcome = self._outcomes[token]
            if outcome is not None:
                break
            if goal_handle.is_cancel_requested:
                controller.cancel(token)
            else:
                goal_handle.publish_feedback(feedback(controller.status()))
        if outcome.reason == REASON_CANCELED:
            goal_handle.canceled()
        elif outcome.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        with self._cv:  # only now may the action server go (wait_idle)
            del self._outcomes[token]
            self._cv.notify_all()
        return outcome, outcome.reason

    def start_command(self, msg) -> str:
        """An EventCommand (no feedback, no result): start it; returns why not, or ''."""
        controller = self._controller()
        try:
            if controller is None:
                raise ValueError('the policy is not configured')
            if msg.mode and msg.mode != controller.mode:
                ok, text = controller.set_mode(msg.mode)
                if not ok:
                    raise ValueError(text)
            limit = convert.duration_seconds(msg.max_duration)
            if controller.mode == MODE_EVENT:
                controller.start_event(msg.event_text, msg.instruction, limit, self._now())
            else:
                controller.start_instruction(msg.instruction, 0, limit, self._now())
        except ValueError as exc:
            return str(exc)
        return ''

    def execute_event(self, goal_handle) -> ExecuteEvent.Result:
        g = goal_handle.request
        outcome, reason = self._run(
            goal_handle, lambda c: c.start_event(
                g.event_text, g.instruction, convert.duration_seconds(g.timeout), self._now()),
            lambda st: ExecuteEvent.Feedback(progress=st.progress,
                                             steps_executed=st.steps_executed,
                                             boundary_probability=st.boundary_probability))
        if outcome is None:
            return ExecuteEvent.Result(success=False, reason=reason)
        return ExecuteEvent.Result(success=outcome.success, reason=reason,
                                   duration=convert.duration(outcome.duration_s))

    def execute_instruction(self, goal_handle) -> ExecuteInstruction.Result:
        g = goal_handle.request
        outcome, reason = self._run(
            goal_handle, lambda c: c.start_instruction(
                g.instruction, g.max_events, convert.duration_seconds(g.timeout), self._now()),
            lambda st: ExecuteInstruction.Feedback(event_text=st.event_text,
                                                   event_index=st.event_index,
                                                   progress=st.progress))
        if outcome is None:
            return ExecuteInstruction.Result(success=False, reason=reason)
        return ExecuteInstruction.Result(success=outcome.success, reason=reason,
                                         events=list(outcome.events))
