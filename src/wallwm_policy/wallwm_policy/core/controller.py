"""The policy controller: goals, the event / unified / chunk state machines, and safety holds.

Called once per control tick with the synchronised observation (or the reason there is none).
It never waits for the model: plans are computed by an `InferenceWorker` and merged into an
`ActionQueue` when they arrive; the tick executes the queued row for this step.

- event mode (`start_event`): one event text -> segments of up to `action_steps` steps,
  replanned every `execute_steps`; the event is done when the boundary probability of an executed
  step reaches `boundary_threshold` ('boundary') or after `action_steps` steps ('segment_end').
- unified mode (`start_instruction`): per event, the per_event graphs (Staircase Decoding) decode
  the next-event caption once; fixed chunks follow; on a boundary the next event starts (the
  remaining rows keep the arm moving meanwhile) until `max_events` or the timeout.
- chunk mode (`start_instruction`): the baseline, fixed chunks from the instruction alone.
Bad inputs or a non-finite model output hold the arm at its measured position; a goal that holds
longer than `hold_abort_s` ends with reason 'hold: ...'.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from wallwm_policy.core import manifest as mf
from wallwm_policy.core.bundle import Bundle
from wallwm_policy.core.chunking import ActionQueue
from wallwm_policy.core.inference import InferenceWorker
from wallwm_policy.core.pipeline import EventContext
from wallwm_policy.core.pipeline import ModePipeline
from wallwm_policy.core.pipeline import Observation
from wallwm_policy.core.pipeline import Plan
from wallwm_policy.core.safety import CommandFilter
from wallwm_policy.core.safety import JointLimits

# Same values as wallwm_msgs/EventStatus STATE_* (the core does not import ROS).
STATE_IDLE = 0
STATE_RUNNING = 1
STATE_HOLDING = 2
STATE_DONE = 3
STATE_FAULT = 4

REASON_BOUNDARY = 'boundary'
REASON_SEGMENT_END = 'segment_end'
REASON_MAX_EVENTS = 'max_events'
REASON_TIMEOUT = 'timeout'
REASON_CANCELED = 'canceled'
REASON_PREEMPTED = 'preempted'
REASON_RESET = 'reset'
REASON_MODE_CHANGED = 'mode_changed'
REASON_SHUTDOWN = 'shutdown'
HOLD_PREFIX = 'hold: '


@dataclass(frozen=True)
class ControlConfig:
    # H: steps executed from a plan before the next is requested (at most a plan's length less
    # the inference lead). 24 of a 64-step event segment: with 8, a hold inside an event (jaws
    # closing or opening) looks the same at each replan and restarts (README, "Replanning").
    execute_steps: int = 24
    blend_steps: int = 4           # rows of a new plan blended into the old one
    # once the queued plan puts the event's boundary this close, ask once for a plan from the
    # current observation, so an event shorter than H still ends planned from close up; 0: off
    # (README, "Replanning before the boundary")
    approach_steps: int = 6
    boundary_threshold: float = 0.5  # boundary probability that ends an event
    min_event_steps: int = 3       # boundary ignored before this many steps of an event
    max_event_steps: int = 300     # unified/chunk: a new event after this many steps anyway
    hold_abort_s: float = 1.0      # a goal holding longer than this ends ('hold: ...')
    seed: int = 0                  # noise seed (reproducible runs)
    noise_scale: float = 0.0       # flow start noise; 0 = deterministic (README, "Results")

    def __post_init__(self):
        if self.execute_steps < 1:
            raise ValueError(f'execute_steps must be >= 1, got {self.execute_steps}')
        if not 0.0 < self.boundary_threshold <= 1.0:
            raise ValueError(
                f'boundary_threshold must be in (0, 1], got {self.boundary_threshold}')
        if self.approach_steps < 0:
            raise ValueError(f'approach_steps must be >= 0, got {self.approach_steps}')
        if self.min_event_steps < 1 or self.max_event_steps < 1 or self.hold_abort_s <= 0:
            raise ValueError('min_event_steps, max_event_steps >= 1 and hold_abort_s > 0')
        if not 0.0 <= self.noise_scale <= 1.0:
            raise ValueError(f'noise_scale must be in [0, 1], got {self.noise_scale}')


@dataclass(frozen=True)
class Outcome:
    """How a goal ended (for the action servers)."""

    token: int
    success: bool
    reason: str
    duration_s: float
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanRecord:
    """A plan merged this tick, for the ActionChunk message."""

    plan: Plan
    stamp: float          # observation stamp it was computed from
    event_index: int
    chunk_index: int


@dataclass(frozen=True)
class Status:
    """Everything EventStatus and the action feedback report, after a tick."""

    state: int = STATE_IDLE
    mode: str = ''
    hold_reason: str = ''
    instruction: str = ''
    event_text: str = ''
    event_index: int = 0
    progress: float = 0.0
    boundary_probability: float = 0.0
    steps_executed: int = 0
    inference_ms: float = 0.0
    goal_token: int = 0   # 0: no goal


@dataclass(frozen=True)
class TickResult:
    command: np.ndarray | None      # (J,) rad to send, or None: send nothing this tick
    status: Status
    plan: PlanRecord | None = None


@dataclass
class _Goal:
    token: int
    mode: str
    instruction: str
    event_text: str
    max_events: int
    timeout_s: float
    started: float
    events: list[str] = field(default_factory=list)
    event_index: int = 0
    event_steps: int = 0
    chunk_index: int = 0
    context: EventContext | None = None
    last_request_step: int = -(10 ** 9)
    approach_planned: bool = False  # this event's approach plan was asked for


def _delivers_outcomes(method):
    """Run the outcome callbacks a method queued once it has released the lock: their owner may
    call in while holding its own lock (the node's GoalBridge), so calling out under ours could
    deadlock."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self._deliver_outcomes()

    return wrapper


class PolicyController:
    """Thread-safe: ticks come from the control timer, goals from action/service callbacks."""

    def __init__(self, bundle: Bundle, limits: JointLimits, config: ControlConfig | None = None,
                 mode: str | None = None, on_outcome: Callable[[Outcome], None] | None = None):
        config = config or ControlConfig()
        self.bundle = bundle
        self.config = config
        self.pipelines = {name: ModePipeline(bundle, name) for name in bundle.manifest.modes}
        self.mode = mode or next(m for m in mf.MODES if m in self.pipelines)
        if self.mode not in self.pipelines:
            raise ValueError(f'mode {self.mode!r} not offered by the bundle '
                             f'(offered: {sorted(self.pipelines)})')
        self.step_period = 1.0 / bundle.manifest.control_rate_hz
        self._filter = CommandFilter(limits, self.step_period)
        self._queue = ActionQueue(config.blend_steps)
        self._worker = InferenceWorker()
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(config.seed)
        self._goal: _Goal | None = None
        self._next_token = 1
        self._step = 0
        self._hold_since: float | None = None
        self._idle_state = STATE_IDLE
        self._status = Status(mode=self.mode)
        self._inference_ms = 0.0
        self._now = 0.0
        self.starved_ticks = 0  # ticks a running goal had no planned row after its first plan
        self._closed = False
        self._outcomes_due: list[Outcome] = []  # queued by _finish, delivered without the lock

    # ---------------------------------------------------------------- goals (any thread)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in mf.MODES if m in self.pipelines)

    def status(self) -> Status:
        with self._lock:
            return self._status

    def update_config(self, **changes) -> None:
        """Change ControlConfig fields live (validated; ValueError leaves the old config)."""
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)

    @_delivers_outcomes
    def set_mode(self, mode: str) -> tuple[bool, str]:
        with self._lock:
            if mode not in self.pipelines:
                return False, f'mode {mode!r} not offered by the bundle (offered: {self.modes})'
            self._finish(False, REASON_MODE_CHANGED, None)
            self.mode = mode
            self._status = Status(mode=mode, state=self._idle_state)
            return True, f'mode {mode}'

    def start_event(self, event_text: str, instruction: str, timeout_s: float, now: float) -> int:
        """Start an event-mode goal; returns its token. Preempts a running goal."""
        if mf.MODE_EVENT not in self.pipelines:
            raise ValueError(f'the bundle does not offer event mode (offered: {self.modes})')
        if not event_text.strip():
            raise ValueError('event text must not be empty in event mode')
        return self._start(mf.MODE_EVENT, instruction, event_text, 0, timeout_s, now)

    def start_instruction(self, instruction: str, max_events: int, timeout_s: float,
                          now: float, mode: str | None = None) -> int:
        """Start a unified- or chunk-mode goal (default: the current mode if it is one of them)."""
        if mode is None:
            mode = self.mode if self.mode != mf.MODE_EVENT else next(
                (m for m in (mf.MODE_UNIFIED, mf.MODE_CHUNK) if m in self.pipelines), None)
        if mode not in (mf.MODE_UNIFIED, mf.MODE_CHUNK) or mode not in self.pipelines:
            raise ValueError(f'instructions run in unified or chunk mode; the bundle offers '
                             f'{self.modes}')
        if not instruction.strip():
            raise ValueError('instruction must not be empty')
        return self._start(mode, instruction, '', max_events, timeout_s, now)

    @_delivers_outcomes
    def _start(self, mode, instruction, event_text, max_events, timeout_s, now) -> int:
        with self._lock:
            if self._closed:
                raise ValueError(REASON_SHUTDOWN)
            self._finish(False, REASON_PREEMPTED, now)
            token = self._next_token
            self._next_token += 1
            self._now = now
            self.mode = mode
            self._goal = _Goal(token=token, mode=mode, instruction=instruction,
                               event_text=event_text, max_events=max(0, int(max_events)),
                               timeout_s=max(0.0, float(timeout_s)), started=now)
            self._hold_since = None
            self._status = Status(state=STATE_RUNNING, mode=mode, instruction=instruction,
                                  event_text=event_text, goal_token=token)
            return token

    @_delivers_outcomes
    def cancel(self, token: int | None = None, reason: str = REASON_CANCELED) -> bool:
        """End the running goal (only if it is `token`, when given). True if one was ended."""
        with self._lock:
            if self._goal is None or (token is not None and self._goal.token != token):
                return False
            self._finish(False, reason, None)
            self._idle_state = STATE_IDLE
            return True

    @_delivers_outcomes
    def reset(self) -> None:
        """Abort the goal, drop queued plans and cached event state, reseed the noise."""
        with self._lock:
            self._finish(False, REASON_RESET, None)
            self._filter.reset()
            self._rng = np.random.default_rng(self.config.seed)
            self._idle_state = STATE_IDLE
            self._status = Status(mode=self.mode)

    def wait_for_inference(self, timeout: float) -> bool:
        """Block until no plan is being computed: for synchronous offline stepping (evaluation,
        replay), never from the control loop."""
        return self._worker.wait_idle(timeout)

    def warm_up(self) -> dict[str, float]:
        """Run every offered mode once (first runs allocate); seconds per mode."""
        rng = np.random.default_rng(self.config.seed)
        return {name: p.warm_up(rng) for name, p in self.pipelines.items()}

    @_delivers_outcomes
    def close(self) -> None:
        """End the running goal ('shutdown') and refuse new ones: once the node stops ticking,
        a goal started later would never end."""
        with self._lock:
            self._closed = True
            self._finish(False, REASON_SHUTDOWN, None)
        self.reset()
        self._worker.close()

    def hold_command(self, measured: np.ndarray | None) -> np.ndarray | None:
        """Where to stop now (deactivation): the measured position, clamped."""
        with self._lock:
            return self._filter.hold(measured)

    # ---------------------------------------------------------------- the control tick

    @_delivers_outcomes
    def tick(self, obs: Observation | None, hold_reason: str, measured: np.ndarray | None,
             now: float) -> TickResult:
        """One control step. `obs` None means hold for `hold_reason`."""
        with self._lock:
            self._step += 1
            self._now = now
            goal = self._goal
            if goal is None:
                self._status = Status(state=self._idle_state, mode=self.mode,
                                      inference_ms=self._status.inference_ms)
                return TickResult(None, self._status)
            if goal.timeout_s and now - goal.started >= goal.timeout_s:
                self._finish(goal.mode != mf.MODE_EVENT, REASON_TIMEOUT, now)
                return TickResult(None, self._status)
            if obs is None:
                return self._hold(goal, hold_reason, measured, now)
            record = self._collect(goal, now)
            if isinstance(record, str):
                return self._hold(goal, record, obs.positions, now)
            self._hold_since = None
            self._request(goal, obs)
            return self._execute(goal, obs, now, record)

    def _hold(self, goal: _Goal, reason: str, measured, now: float) -> TickResult:
        self._worker.invalidate()
        self._queue.clear()
        if self._hold_since is None:
            self._hold_since = now
        command = self._filter.hold(measured)
        self._status = self._make_status(goal, STATE_HOLDING, reason)
        if now - self._hold_since >= self.config.hold_abort_s:
            self._finish(False, HOLD_PREFIX + reason, now)
            self._idle_state = STATE_IDLE
            self._status = dataclasses.replace(self._status, hold_reason=reason)
        return TickResult(command, self._status)

    def _collect(self, goal: _Goal, now: float) -> PlanRecord | str | None:
        """Merge a finished plan into the queue; a string is a reason to hold."""
        result = self._worker.poll()
        if result is None:
            return None
        if result.error is not None:
            return f'inference failed: {result.error}'
        plan_step, event_index, stamp = result.tag
        context, plan = result.value
        if event_index != goal.event_index:
            return None
        if goal.context is None:
            goal.context = context
            if goal.mode == mf.MODE_UNIFIED:
                goal.events.append(context.caption)
        self._queue.insert(plan, plan_step, self._step)
        self._inference_ms = plan.inference_s * 1e3
        record = PlanRecord(plan, stamp, goal.event_index, goal.chunk_index)
        goal.chunk_index += 1
        return record

    def _request(self, goal: _Goal, obs: Observation) -> None:
        # Ask early enough that the plan arrives before the queue runs dry: `lead` steps of
        # latency, so at most S - lead steps are executed from a plan even if H is larger.
        lead = 1 + math.ceil(self._inference_ms * 1e-3 / self.step_period)
        steps = self.pipelines[goal.mode].action_steps
        horizon = max(1, min(self.config.execute_steps, steps - lead))
        due = (goal.context is None or self._queue.remaining(self._step) <= lead
               or self._step - goal.last_request_step >= horizon)
        near = self.config.approach_steps
        approach = (not due and near > 0 and not goal.approach_planned
                    and self._step - goal.last_request_step >= near
                    and self._queue.boundary_within(self._step, near,
                                                    self.config.boundary_threshold))
        if not (due or approach) or self._worker.busy:
            return
        pipeline = self.pipelines[goal.mode]
        context, rng, scale = goal.context, self._rng, self.config.noise_scale
        instruction, event_text = goal.instruction, goal.event_text

        def job():
            ctx = context or pipeline.start_event(obs, instruction, event_text, rng, scale)
            return ctx, pipeline.plan(obs, ctx, rng, scale)

        if self._worker.submit((self._step, goal.event_index, obs.stamp), job):
            goal.last_request_step = self._step
            goal.approach_planned |= approach

    def _execute(self, goal: _Goal, obs: Observation, now: float,
                 record: PlanRecord | None) -> TickResult:
        row = self._queue.take(self._step)
        if row is None:  # no plan yet for this step: nothing new to send
            if goal.chunk_index > 1:
                self.starved_ticks += 1   # the model did not keep up with the horizon
            self._status = self._make_status(goal, STATE_RUNNING, '')
            return TickResult(None, self._status, record)
        command = self._filter.apply(row.action, obs.positions)
        goal.event_steps += 1
        self._status = self._make_status(goal, STATE_RUNNING, '', row.progress, row.boundary)
        fired = (self.pipelines[goal.mode].has_boundary and goal.event_steps >=
                 self.config.min_event_steps and row.boundary >= self.config.boundary_threshold)
        if goal.mode == mf.MODE_EVENT:
            if fired or goal.event_steps >= self.pipelines[goal.mode].action_steps:
                self._finish(True, REASON_BOUNDARY if fired else REASON_SEGMENT_END, now)
                self._idle_state = STATE_DONE
        elif fired or goal.event_steps >= self.config.max_event_steps:
            self._next_event(goal, now)
        return TickResult(command, self._status, record)

    def _next_event(self, goal: _Goal, now: float) -> None:
        if goal.mode == mf.MODE_CHUNK:
            goal.event_steps = 0  # the baseline has no events; the step budget just restarts
            return
        goal.event_index += 1
        if goal.max_events and goal.event_index >= goal.max_events:
            self._finish(True, REASON_MAX_EVENTS, now)
            self._idle_state = STATE_DONE
            return
        self._worker.invalidate()
        self._queue.disarm_boundary()
        goal.context = None
        goal.event_steps = 0
        goal.chunk_index = 0
        goal.approach_planned = False

    def _make_status(self, goal: _Goal, state: int, reason: str, progress: float = 0.0,
                     boundary: float = 0.0) -> Status:
        caption = goal.context.caption if goal.context is not None else goal.event_text
        return Status(state=state, mode=goal.mode, hold_reason=reason,
                      instruction=goal.instruction, event_text=caption,
                      event_index=goal.event_index, progress=progress,
                      boundary_probability=boundary, steps_executed=goal.event_steps,
                      inference_ms=self._inference_ms, goal_token=goal.token)

    def _finish(self, success: bool, reason: str, now: float | None) -> None:
        goal = self._goal
        if goal is None:
            return
        self._goal = None
        self._worker.invalidate()
        self._queue.clear()
        self._hold_since = None
        duration = max(0.0, (self._now if now is None else now) - goal.started)
        # The last tick's figures stay visible (steps, progress), with the goal's end state.
        self._status = dataclasses.replace(
            self._status, state=STATE_DONE if success else STATE_IDLE, mode=goal.mode,
            instruction=goal.instruction, event_index=goal.event_index, goal_token=0)
        self._outcomes_due.append(
            Outcome(goal.token, success, reason, duration, tuple(goal.events)))

    def _deliver_outcomes(self) -> None:
        while True:
            with self._lock:
                if not self._outcomes_due:
                    return
                outcome = self._outcomes_due.pop(0)
            self._on_outcome(outcome)
