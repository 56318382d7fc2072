"""Runtime core without ROS: preprocessing, bundles, chunk execution, state machines, safety."""

import json
import threading
import time

import cv2
import numpy as np
import pytest
from synthetic_bundle import JOINTS
from synthetic_bundle import SyntheticSpec
from synthetic_bundle import build_bundle

from wallwm_policy.core import manifest as mf
from wallwm_policy.core.bundle import BundleError
from wallwm_policy.core.bundle import load_bundle
from wallwm_policy.core.chunking import ActionQueue
from wallwm_policy.core.controller import STATE_DONE
from wallwm_policy.core.controller import STATE_HOLDING
from wallwm_policy.core.controller import STATE_RUNNING
from wallwm_policy.core.controller import ControlConfig
from wallwm_policy.core.controller import PolicyController
from wallwm_policy.core.inference import InferenceWorker
from wallwm_policy.core.pipeline import ModePipeline
from wallwm_policy.core.pipeline import Observation
from wallwm_policy.core.pipeline import Plan
from wallwm_policy.core.preprocess import InputError
from wallwm_policy.core.preprocess import JointMapper
from wallwm_policy.core.preprocess import Normalizer
from wallwm_policy.core.preprocess import compressed_to_rgb
from wallwm_policy.core.preprocess import images_tensor
from wallwm_policy.core.preprocess import raw_image_to_rgb
from wallwm_policy.core.safety import CommandFilter
from wallwm_policy.core.safety import JointLimits
from wallwm_policy.core.sessions import SessionConfig
from wallwm_policy.core.sync import JOINT_STATES
from wallwm_policy.core.sync import ObservationSync
from wallwm_policy.core.sync import SyncConfig

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
PERIOD = 1.0 / 30.0

# ------------------------------------------------------------------------------ preprocessing


def test_raw_encodings_become_rgb_with_row_padding():
    pad = 8
    rgb_rows = np.pad(RGB.reshape(24, -1), ((0, 0), (0, pad)))
    assert np.array_equal(raw_image_to_rgb('rgb8', 24, 40, 40 * 3 + pad, rgb_rows.tobytes()), RGB)
    bgr_rows = RGB[:, :, ::-1].reshape(24, -1)
    assert np.array_equal(raw_image_to_rgb('bgr8', 24, 40, 120, bgr_rows.tobytes()), RGB)
    gray = RGB[:, :, 0]
    mono = raw_image_to_rgb('mono8', 24, 40, 40, gray.tobytes())
    assert mono.shape == (24, 40, 3) and np.array_equal(mono[:, :, 2], gray)


@pytest.mark.parametrize('args, needle', [
    (('yuv422', 24, 40, 80, bytes(24 * 80)), 'unsupported image encoding'),
    (('rgb8', 24, 40, 120, bytes(100)), 'needs'),
    (('rgb8', 24, 40, 10, bytes(24 * 120)), 'step'),
    (('rgb8', 0, 40, 120, b''), 'outside'),
    (('rgb8', 100000, 100000, 300000, b'x'), 'outside'),
])
def test_bad_raw_images_are_input_errors(args, needle):
    with pytest.raises(InputError, match=needle):
        raw_image_to_rgb(*args)


def test_compressed_jpeg_and_png_decode_to_rgb():
    _, png = cv2.imencode('.png', RGB[:, :, ::-1])
    assert np.array_equal(compressed_to_rgb('png', png.tobytes()), RGB)
    red = np.zeros((24, 40, 3), np.uint8)
    red[..., 0] = np.linspace(100, 250, 40, dtype=np.uint8)   # a smooth red ramp
    _, jpg = cv2.imencode('.jpg', red[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = compressed_to_rgb('rgb8; jpeg compressed bgr8', jpg.tobytes())
    assert decoded.shape == red.shape
    assert np.abs(decoded.astype(int) - red).mean() < 4  # lossy, but the same picture, in RGB


def test_bad_compressed_images_are_input_errors():
    _, png = cv2.imencode('.png', RGB)
    huge = bytearray(png.tobytes())
    huge[16:24] = (60000).to_bytes(4, 'big') * 2     # header claims 60000 x 60000
    for fmt, data, needle in [('png', b'', 'no data'), ('jpeg', b'\xff\xd8garbage', 'header'),
                              ('png', bytes(huge), 'outside'), ('tiff', png.tobytes(), 'tiff'),
                              ('png', png.tobytes()[:40], 'could not be decoded')]:
        with pytest.raises(InputError, match=needle):
            compressed_to_rgb(fmt, data)


def test_images_tensor_layout():
    frames = [np.full((4, 5, 3), 255, np.uint8), np.zeros((4, 5, 3), np.uint8)]
    frames[1][..., 2] = 51
    tensor = images_tensor(frames)
    assert tensor.shape == (1, 2, 3, 4, 5) and tensor.dtype == np.float32
    assert tensor[0, 0].min() == 1.0 and np.allclose(tensor[0, 1, 2], 0.2)


def test_joint_mapping_by_name_in_any_order_with_extras():
    mapper = JointMapper(JOINTS)
    names = ['gripper', 'extra_wheel'] + list(reversed(JOINTS[:-1]))
    positions = [6.0, 99.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    assert mapper.positions(names, positions).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    with pytest.raises(InputError, match=r"lacks joints \['gripper'\]"):
        mapper.positions(JOINTS[:-1], [0.0] * 5)
    with pytest.raises(InputError, match='non-finite'):
        mapper.positions(JOINTS, [0.0, np.nan, 0, 0, 0, 0])
    with pytest.raises(InputError, match='6 names but 2 positions'):
        mapper.positions(JOINTS, [0.0, 1.0])


def test_normalizer_round_trip():
    norm = Normalizer.from_stats([1.0, -2.0], [0.5, 4.0])
    x = np.array([2.0, 6.0])
    assert np.allclose(norm.normalize(x), [2.0, 2.0])
    assert np.allclose(norm.denormalize(norm.normalize(x)), x)


# ------------------------------------------------------------------------------ bundles


@pytest.fixture(scope='module')
def bundle_dir(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp('bundle') / 'synthetic')


@pytest.fixture(scope='module')
def bundle(bundle_dir):
    return load_bundle(bundle_dir, SessionConfig(intra_op_threads=1))


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_bundle_loads_with_one_provider_line(bundle):
    assert set(bundle.graphs) == {'observation_encoder', 'event_sampler', 'staircase',
                                  'unified_sampler', 'chunk_sampler'}
    assert bundle.providers.providers[-1] == 'CPUExecutionProvider'
    assert bundle.providers.reason.startswith('using ') and '\n' not in bundle.providers.reason


def test_corrupt_missing_or_mismatched_bundle_files_name_the_file(bundle_dir, tmp_path):
    corrupt = _copy(bundle_dir, tmp_path / 'corrupt')
    data = bytearray((corrupt / 'event_sampler.onnx').read_bytes())
    data[-5] ^= 0xFF
    (corrupt / 'event_sampler.onnx').write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r'event_sampler\.onnx: sha256 mismatch'):
        load_bundle(corrupt)

    missing = _copy(bundle_dir, tmp_path / 'missing')
    (missing / 'tokenizer.json').unlink()
    with pytest.raises(BundleError, match=r'tokenizer\.json: listed in the manifest but missing'):
        load_bundle(missing)

    # A graph whose declared shape disagrees with the ONNX file (hashes updated to match).
    mismatched = _copy(bundle_dir, tmp_path / 'mismatched')
    manifest = json.loads((mismatched / 'manifest.json').read_text())
    for graph in manifest['graphs'].values():
        for tensor in graph['inputs'] + graph['outputs']:
            if tensor['name'] == 'obs_features':
                tensor['shape'] = [1, 99]
    (mismatched / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"observation_encoder\.onnx: output 'obs_features' is "
                                          r'float32\[1, 12\] in the graph but float32\[1, 99\]'):
        load_bundle(mismatched)

    invalid = _copy(bundle_dir, tmp_path / 'invalid')
    (invalid / 'staircase.onnx').write_bytes(b'not an onnx file')
    manifest = json.loads((invalid / 'manifest.json').read_text())
    manifest['files']['staircase.onnx'] = mf.sha256_file(invalid / 'staircase.onnx')
    (invalid / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r'staircase\.onnx: onnxruntime cannot load'):
        load_bundle(invalid)

    with pytest.raises(BundleError, match='bundle folder not found'):
        load_bundle(tmp_path / 'nowhere')


def test_gpu_providers_requested_on_a_cpu_machine_fall_back_quietly(bundle_dir, capfd):
    b = load_bundle(bundle_dir, SessionConfig(providers=('cuda',), intra_op_threads=1))
    assert b.providers.providers == ('CPUExecutionProvider',)
    assert 'CPU added as the last resort' in b.providers.reason
    assert capfd.readouterr().err.count('\n') <= 1


# ------------------------------------------------------------------------------ chunk execution


def _plan(actions, boundary=None):
    actions = np.asarray(actions, dtype=np.float64)
    steps = len(actions)
    return Plan(actions=actions, boundary=np.zeros(steps) if boundary is None else boundary,
                progress=np.zeros(steps), inference_s=0.0, preprocess_s=0.0)


def test_queue_drops_stale_rows_and_blends_into_the_old_plan():
    queue = ActionQueue(blend_steps=3)
    queue.insert(_plan(np.zeros((10, 1))), plan_step=0, now_step=0)
    assert queue.take(0).action[0] == 0.0 and queue.remaining(4) == 6
    # computed from step 2's observation, arrives at step 4: rows for steps 2, 3 are past.
    dropped = queue.insert(_plan(np.arange(10, 20, dtype=float)[:, None]), plan_step=2, now_step=4)
    assert dropped == 2
    rows = queue.rows(4)[:, 0]
    # new rows 12, 13, 14 ramp from the old 0s with weights 1/4, 2/4, 3/4; then pure new rows.
    assert np.allclose(rows[:3], [12 * 0.25, 13 * 0.5, 14 * 0.75])
    assert np.allclose(rows[3:], np.arange(15, 20))
    assert queue.take(3) is None and queue.take(4).action[0] == pytest.approx(3.0)


def test_first_plan_into_an_empty_queue_starts_now_without_dropping():
    queue = ActionQueue(blend_steps=4)
    assert queue.insert(_plan(np.arange(5.0)[:, None]), plan_step=0, now_step=3) == 0
    assert queue.take(3).action[0] == 0.0 and queue.remaining(3) == 5


def test_worker_never_blocks_and_drops_invalidated_results():
    worker = InferenceWorker()
    try:
        assert worker.submit('a', lambda: time.sleep(0.2) or 1)
        t0 = time.perf_counter()
        assert not worker.submit('b', lambda: 2)   # busy: the caller moves on
        assert worker.poll() is None
        assert time.perf_counter() - t0 < 0.05
        worker.invalidate()
        assert worker.wait_idle(2.0)
        assert worker.poll() is None               # result of the invalidated job is gone
        assert worker.submit('c', lambda: 1 / 0)
        assert worker.wait_idle(2.0)
        result = worker.poll()
        assert result.tag == 'c' and isinstance(result.error, ZeroDivisionError)
    finally:
        worker.close()


# ------------------------------------------------------------------------------ state machines

LIMITS = JointLimits.from_profile(JOINTS, JOINTS, [-1.5] * 6, [1.5] * 6, [3.0] * 6)
IMAGES = {'front': np.zeros((48, 64, 3), np.uint8), 'wrist': np.zeros((48, 64, 3), np.uint8)}


class Loop:
    """Closed loop: the arm goes exactly where commanded; ticks at 30 Hz of simulated time."""

    def __init__(self, controller):
        self.controller = controller
        self.pos = np.zeros(len(JOINTS))
        self.now = 0.0
        self.results = []

    def tick(self, obs_ok=True, reason='camera front stale'):
        obs = Observation(self.now, IMAGES, self.pos.copy()) if obs_ok else None
        result = self.controller.tick(obs, '' if obs_ok else reason, self.pos.copy(), self.now)
        if result.command is not None:
            self.pos = result.command
        self.results.append(result)
        self.now += PERIOD
        return result

    def run_until(self, predicate, max_ticks=300):
        for _ in range(max_ticks):
            result = self.tick()
            if predicate(result):
                return result
            # give the inference thread a moment, as real time would
            self.controller._worker.wait_idle(1.0)
        raise AssertionError('condition not reached')


@pytest.fixture
def make_controller(bundle):
    made = []

    def make(config=None, the_bundle=None):
        outcomes = []
        ctrl = PolicyController(the_bundle or bundle, LIMITS, config, on_outcome=outcomes.append)
        made.append(ctrl)
        return Loop(ctrl), outcomes

    yield make
    for ctrl in made:
        ctrl.close()


def test_event_mode_runs_until_the_boundary_then_reports_done(make_controller):
    loop, outcomes = make_controller()
    token = loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    first = loop.tick()
    assert first.command is None and first.status.state == STATE_RUNNING  # no plan yet
    loop.run_until(lambda r: outcomes)
    (outcome,) = outcomes
    assert outcome.token == token and outcome.success and outcome.reason == 'boundary'
    # the synthetic boundary fires once shoulder_pan passes 0.3 rad, at 0.02 rad per step.
    assert loop.pos[0] == pytest.approx(0.3, abs=0.021)
    assert loop.results[-1].status.state == STATE_DONE
    assert loop.tick().command is None              # done: the arm is no longer commanded
    steps = [r.status.steps_executed for r in loop.results if r.command is not None]
    assert steps == list(range(1, len(steps) + 1))


@pytest.mark.parametrize('approach, plans', [(0, 1), (6, 2)])
def test_an_event_ending_within_its_first_plan_is_replanned_once_near_its_boundary(
        make_controller, approach, plans):
    # The boundary (shoulder_pan at 0.3 rad) is 15 planned rows in, before H = 20 runs out: without
    # approach_steps the whole event runs open loop from its first observation.
    loop, outcomes = make_controller(ControlConfig(execute_steps=20, approach_steps=approach))
    loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    loop.run_until(lambda r: outcomes)
    assert outcomes[0].reason == 'boundary'
    stamps = [r.plan.stamp for r in loop.results if r.plan is not None]
    assert len(stamps) == plans
    if approach:   # asked for from the tick where the queued boundary came within 6 steps
        boundary_tick = len(loop.results) - 1
        assert round(stamps[1] / PERIOD) == boundary_tick - approach + 1


def test_event_mode_ends_at_the_segment_length_without_a_boundary(bundle_dir, tmp_path,
                                                                    make_controller):
    never = build_bundle(tmp_path / 'never', SyntheticSpec(target=100.0, modes=('event',),
                                                            event_steps=10, delta=0.001))
    loop, outcomes = make_controller(ControlConfig(execute_steps=4),
                                     load_bundle(never, SessionConfig(intra_op_threads=1)))
    loop.controller.start_event('lift the cube', '', 0.0, loop.now)
    loop.run_until(lambda r: outcomes)
    assert outcomes[0].reason == 'segment_end' and outcomes[0].success
    assert loop.results[-1].status.steps_executed == 10


def test_unified_mode_decodes_captions_and_counts_events(make_controller):
    loop, outcomes = make_controller()
    loop.controller.start_instruction('put the red cube in the bin', 2, 0.0, loop.now,
                                      mode='unified')
    loop.run_until(lambda r: outcomes)
    assert outcomes[0].reason == 'max_events' and outcomes[0].success
    assert outcomes[0].events == ('grasp the red cube', 'grasp the red cube')
    running = [r for r in loop.results
               if r.status.state == STATE_RUNNING and r.command is not None]
    assert running[0].status.event_text == 'grasp the red cube'
    assert {r.status.event_index for r in running} == {0, 1}
    records = [r.plan for r in loop.results if r.plan is not None]
    assert records[0].event_index == 0 and records[0].chunk_index == 0


def test_chunk_mode_runs_until_timeout_and_cancel_stops_it(make_controller):
    loop, outcomes = make_controller()
    loop.controller.start_instruction('put the red cube in the bin', 0, 0.5, loop.now,
                                      mode='chunk')
    loop.run_until(lambda r: outcomes)
    assert outcomes[0].reason == 'timeout' and outcomes[0].success
    assert loop.pos[0] > 0.2    # it moved meanwhile (capped by the 1.5 rad limit)
    token = loop.controller.start_instruction('put the red cube in the bin', 0, 0.0, loop.now,
                                              mode='chunk')
    loop.tick()
    assert loop.controller.cancel(token)
    assert outcomes[1].reason == 'canceled' and not outcomes[1].success


def test_a_new_goal_preempts_the_running_one(make_controller):
    loop, outcomes = make_controller()
    first = loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    loop.tick()
    loop.controller.start_event('grasp the red cube', '', 0.0, loop.now)
    assert outcomes[0].token == first and outcomes[0].reason == 'preempted'


def test_outcomes_are_delivered_outside_the_controllers_lock(bundle):
    """The node's GoalBridge starts a goal while holding its own lock, and its outcome callback
    takes that lock: a goal ending in another thread at that moment must not deadlock."""
    bridge_lock, in_callback, bridge_holds = threading.Lock(), threading.Event(), threading.Event()
    took_lock = []

    def on_outcome(outcome):
        in_callback.set()
        bridge_holds.wait(2.0)
        took_lock.append(bridge_lock.acquire(timeout=2.0))
        if took_lock[-1]:
            bridge_lock.release()

    controller = PolicyController(bundle, LIMITS, on_outcome=on_outcome)
    controller.start_event('reach the red cube', '', 0.0, 0.0)

    def start_while_holding_the_bridge_lock():
        in_callback.wait(2.0)
        with bridge_lock:
            bridge_holds.set()
            controller.start_event('grasp the red cube', '', 0.0, 0.0)

    other = threading.Thread(target=start_while_holding_the_bridge_lock)
    other.start()
    assert controller.cancel()  # ends the first goal here: its callback runs in this thread
    other.join(5.0)
    controller.close()
    assert took_lock == [True, True]  # the first goal's outcome, then the second's at close()


def test_closing_ends_the_goal_and_refuses_later_ones(make_controller):
    """Shutdown: a goal whose callback starts after close() would never end (no more ticks)."""
    loop, outcomes = make_controller()
    running = loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    loop.tick()
    loop.controller.close()
    assert outcomes[0].token == running and outcomes[0].reason == 'shutdown'
    with pytest.raises(ValueError, match='^shutdown$'):
        loop.controller.start_event('grasp the red cube', '', 0.0, loop.now)
    with pytest.raises(ValueError, match='^shutdown$'):
        loop.controller.start_instruction('put the red cube in the bin', 4, 0.0, loop.now)
    assert len(outcomes) == 1


# ------------------------------------------------------------------------------ safety


def test_commands_are_clamped_and_rate_limited():
    limits = JointLimits.from_profile(['a', 'b'], ['b', 'a', 'c'], [-1, -2, 0], [1, 2, 1],
                                      [3.0, 6.0, 1.0])
    assert limits.lower.tolist() == [-2, -1] and limits.max_velocity.tolist() == [6.0, 3.0]
    filt = CommandFilter(limits, step_period=0.1)
    first = filt.apply(np.array([10.0, -10.0]), measured=np.array([0.0, 0.0]))
    assert np.allclose(first, [0.6, -0.3])           # 6 rad/s and 3 rad/s for 0.1 s
    for _ in range(50):
        cmd = filt.apply(np.array([10.0, -10.0]), measured=np.zeros(2))
    assert cmd.tolist() == [2.0, -1.0]               # then clamped at the limits
    assert filt.hold(np.array([5.0, np.nan])).tolist() == [2.0, -1.0]  # bad measurement: last
    assert filt.hold(np.array([5.0, 0.5])).tolist() == [2.0, 0.5]      # clamped measurement
    with pytest.raises(ValueError, match='no limits'):
        JointLimits.from_profile(['a', 'z'], ['a'], [0], [1], [1])


def test_stale_or_invalid_inputs_hold_and_a_long_hold_aborts(make_controller):
    loop, outcomes = make_controller(ControlConfig(hold_abort_s=0.2))
    loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    loop.run_until(lambda r: r.command is not None)
    moving = loop.pos.copy()
    held = loop.tick(obs_ok=False)
    assert held.status.state == STATE_HOLDING and held.status.hold_reason == 'camera front stale'
    assert np.array_equal(held.command, moving)      # stop where the arm is
    for _ in range(8):
        loop.tick(obs_ok=False)
    assert outcomes[0].reason == 'hold: camera front stale' and not outcomes[0].success


def test_model_returning_nan_holds(tmp_path, make_controller):
    poisoned = build_bundle(tmp_path / 'nan', SyntheticSpec(nan_above=0.1, modes=('event',)))
    # Replan after 8 steps (shoulder_pan ~0.16), before the first plan's boundary (0.3) ends it.
    loop, outcomes = make_controller(ControlConfig(hold_abort_s=5.0, execute_steps=8),
                                     load_bundle(poisoned, SessionConfig(intra_op_threads=1)))
    loop.controller.start_event('reach the red cube', '', 0.0, loop.now)
    result = loop.run_until(lambda r: r.status.state == STATE_HOLDING)
    assert 'non-finite actions' in result.status.hold_reason
    assert np.all(np.isfinite(result.command)) and result.command[0] <= 0.1 + 0.1


def test_sync_picks_frames_by_stamp_and_names_the_problem():
    sync = ObservationSync(['front', 'wrist'], SyncConfig(tolerance_s=0.02, max_age_s=0.5))
    assert sync.assemble(0.0) == (None, 'no joint state received')
    frame_a, frame_b = np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
    sync.add(JOINT_STATES, 1.0, np.zeros(6))
    sync.add('front', 0.9, frame_a)
    sync.add('front', 1.01, frame_b)
    assert sync.assemble(1.05)[1] == 'no image from camera wrist'
    sync.add('wrist', 1.0, frame_a)
    obs, reason = sync.assemble(1.05)
    assert reason == '' and obs.images['front'] is frame_b and obs.stamp == 1.0
    assert 'joint state stale' in sync.assemble(2.0)[1]
    sync.add('wrist', 1.2, frame_b)
    sync.add('wrist', 1.3, None, error="unsupported image encoding 'yuv'")
    assert sync.assemble(1.05)[1] == "camera wrist rejected: unsupported image encoding 'yuv'"
    sync.add('wrist', 1.1, frame_b)                  # newest valid is 0.1 s off the joint state
    sync.add(JOINT_STATES, 0.95, np.zeros(6))
    assert 'wrist out of sync' in sync.assemble(1.0)[1] or 'front' in sync.assemble(1.0)[1]
    sync.add(JOINT_STATES, float('nan'), np.zeros(6))
    assert 'non-finite stamp' in sync.assemble(1.0)[1]


# ------------------------------------------------------------------------------ the real bundle


def test_runtime_chains_the_exported_graphs_like_the_exporter(tiny_bundle):
    """Same tensors in, same actions out as wallwm_train's own ONNX evaluation of each mode."""
    from wallwm_train.export import run_onnx

    real = load_bundle(tiny_bundle, SessionConfig(intra_op_threads=1))
    m = real.manifest
    height, width = m.image_size
    rng = np.random.default_rng(3)
    images = {c.name: rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for c in m.cameras}
    obs = Observation(0.0, images, rng.normal(0, 0.3, m.num_joints))
    for mode in m.modes:
        pipeline = ModePipeline(real, mode)
        context = pipeline.start_event(obs, 'put the red cube in the bin', 'grasp the red cube',
                                       np.random.default_rng(0))
        plan = pipeline.plan(obs, context, np.random.default_rng(1))
        reference_inputs = {**pipeline.observation_tensors(obs),
                            **pipeline.text_tensors('put the red cube in the bin',
                                                    'grasp the red cube'),
                            'noise': pipeline.noise(np.random.default_rng(1))}
        last = m.modes[mode].per_step[-1]
        reference = run_onnx(tiny_bundle, mode, reference_inputs)[last]['actions'][0]
        expected = reference * np.array(m.normalization.action.std) + np.array(
            m.normalization.action.mean)
        np.testing.assert_allclose(plan.actions, expected, rtol=1e-5, atol=1e-5)
        assert plan.actions.shape == (m.modes[mode].action_steps, m.num_joints)
        if mode == 'unified':
            assert isinstance(context.caption, str)


def test_event_mode_trained_without_the_instruction_ignores_its_wording(tmp_path, tiny_exporter):
    """A bundle trained with model.event_reads_instruction false says so in its manifest, and
    the runtime gives its event mode the empty instruction: an unseen wording changes nothing,
    the event text still steers it, and unified mode still reads the instruction."""
    path = tiny_exporter(tmp_path / 'bundle', steps=3,
                         overrides=['model.event_reads_instruction=false'])
    real = load_bundle(path, SessionConfig(intra_op_threads=1))
    assert not real.manifest.modes['event'].reads_instruction
    assert real.manifest.modes['unified'].reads_instruction
    m = real.manifest
    height, width = m.image_size
    rng = np.random.default_rng(3)
    images = {c.name: rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for c in m.cameras}
    obs = Observation(0.0, images, rng.normal(0, 0.3, m.num_joints))

    def actions(mode, instruction, event_text='grasp the red cube'):
        pipeline = ModePipeline(real, mode)
        context = pipeline.start_event(obs, instruction, event_text, np.random.default_rng(0))
        return pipeline.plan(obs, context, np.random.default_rng(1)).actions

    seen = actions('event', 'put the red cube in the bin')
    np.testing.assert_array_equal(seen, actions('event', 'transfer the crimson block away'))
    assert not np.allclose(seen, actions('event', 'put the red cube in the bin', 'lift it'))
    assert not np.allclose(actions('unified', 'put the red cube in the bin'),
                           actions('unified', 'transfer the crimson block away'))


def test_every_mode_of_the_real_bundle_runs_in_closed_loop(tiny_bundle, make_controller):
    real = load_bundle(tiny_bundle, SessionConfig(intra_op_threads=1))
    loop, outcomes = make_controller(ControlConfig(execute_steps=2, max_event_steps=20), real)
    loop.controller.start_event('reach above the red cube', 'put the red cube in the bin', 0.0,
                                loop.now)
    loop.run_until(lambda r: outcomes)
    assert outcomes[0].success and outcomes[0].reason in ('boundary', 'segment_end')
    loop.controller.start_instruction('put the red cube in the bin', 2, 0.0, loop.now,
                                      mode='unified')
    loop.run_until(lambda r: len(outcomes) == 2)
    assert outcomes[1].reason == 'max_events' and len(outcomes[1].events) == 2
    loop.controller.start_instruction('put the red cube in the bin', 0, 0.4, loop.now,
                                      mode='chunk')
    loop.run_until(lambda r: len(outcomes) == 3)
    assert outcomes[2].reason == 'timeout'
    commands = [r.command for r in loop.results if r.command is not None]
    assert commands and all(np.all(c >= LIMITS.lower) and np.all(c <= LIMITS.upper)
                            for c in commands)


def test_same_seed_same_commands_and_reset_replays(tiny_bundle, make_controller):
    """Noise is drawn from the seeded generator: a run can be reproduced exactly. At the
    default scale 0 the flow starts at 0 and the seed does not matter."""
    real = load_bundle(tiny_bundle, SessionConfig(intra_op_threads=1))

    def run(loop):
        loop.pos = np.zeros(len(JOINTS))
        start = len(loop.results)
        loop.controller.start_instruction('put the red cube in the bin', 0, 0.0, loop.now,
                                          mode='chunk')
        for _ in range(25):
            loop.tick()
            loop.controller._worker.wait_idle(1.0)
        loop.controller.cancel()
        return np.array([r.command for r in loop.results[start:] if r.command is not None])

    first_loop, _ = make_controller(ControlConfig(seed=5, noise_scale=1.0), real)
    second_loop, _ = make_controller(ControlConfig(seed=5, noise_scale=1.0), real)
    first = run(first_loop)
    assert len(first) > 10
    np.testing.assert_array_equal(first, run(second_loop))
    first_loop.controller.reset()           # reseeds: the same run again
    np.testing.assert_array_equal(first, run(first_loop))
    other_loop, _ = make_controller(ControlConfig(seed=6, noise_scale=1.0), real)
    assert not np.array_equal(first, run(other_loop))
    quiet = [run(make_controller(ControlConfig(seed=s), real)[0]) for s in (5, 6)]
    np.testing.assert_array_equal(quiet[0], quiet[1])
    assert not np.array_equal(quiet[0], first)
    with pytest.raises(ValueError, match='noise_scale'):
        ControlConfig(noise_scale=1.5)
