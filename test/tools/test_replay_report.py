"""The offline replay debugger runs a real bundle on a real bag and reports holds with reasons."""

import numpy as np

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
RATE = 30.0


def _write_bag(path, seconds=3.0, wrist_gap=(1.0, 2.0)):
    from rosbags.rosbag2 import StoragePlugin
    from rosbags.rosbag2 import Writer

    from wallwm_tools.bag_types import typestore

    store = typestore()
    T = store.types
    stamp = lambda t: T['builtin_interfaces/msg/Time'](sec=int(t), nanosec=int(t % 1 * 1e9))  # noqa: E731
    header = lambda t: T['std_msgs/msg/Header'](stamp=stamp(t), frame_id='')  # noqa: E731
    t0 = 100.0
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {
            'joints': writer.add_connection(
                '/joint_states', 'sensor_msgs/msg/JointState', typestore=store
            ),
            'front': writer.add_connection(
                '/camera/front/image_raw', 'sensor_msgs/msg/Image', typestore=store
            ),
            'wrist': writer.add_connection(
                '/camera/wrist/image_raw', 'sensor_msgs/msg/Image', typestore=store
            ),
            'status': writer.add_connection(
                '/wallwm_policy/status', 'wallwm_msgs/msg/EventStatus', typestore=store
            ),
        }
        for k in range(int(seconds * RATE)):
            t = t0 + k / RATE
            ns = int(t * 1e9)
            pos = np.sin(np.arange(6) + k / 20.0) * 0.3
            order = [5, 0, 3, 1, 4, 2]  # shuffled joint order, as drivers do
            js = T['sensor_msgs/msg/JointState'](
                header=header(t),
                name=[JOINTS[i] for i in order],
                position=pos[order],
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            writer.write(conns['joints'], ns, store.serialize_cdr(js, js.__msgtype__))
            for cam in ('front', 'wrist'):
                if cam == 'wrist' and wrist_gap[0] <= k / RATE < wrist_gap[1]:
                    continue
                pixels = np.full((48, 48, 3), (k * 3) % 255, np.uint8)
                img = T['sensor_msgs/msg/Image'](
                    header=header(t),
                    height=48,
                    width=48,
                    encoding='bgr8' if cam == 'wrist' else 'rgb8',
                    is_bigendian=0,
                    step=48 * 3,
                    data=pixels.reshape(-1),
                )
                writer.write(conns[cam], ns, store.serialize_cdr(img, img.__msgtype__))
            event = 'reach above the red cube' if k < 45 else 'grasp the red cube'
            st = T['wallwm_msgs/msg/EventStatus'](
                header=header(t),
                mode='event',
                state=1,
                hold_reason='',
                instruction='put the red cube in the bin',
                event_text=event,
                event_index=k // 45,
                progress=0.0,
                boundary_probability=0.1,
                steps_executed=k,
                bundle_id='x',
                inference_latency_ms=1.0,
            )
            writer.write(conns['status'], ns, store.serialize_cdr(st, st.__msgtype__))


def test_replay_report_on_a_recorded_bag(tmp_path, tiny_bundle):
    from wallwm_tools import replay_report

    bag = tmp_path / 'run'
    _write_bag(bag)
    out = tmp_path / 'report'
    assert (
        replay_report.main(
            [
                '--bag',
                str(bag),
                '--bundle',
                str(tiny_bundle),
                '--out',
                str(out),
                '--replan-every',
                '3',
            ]
        )
        == 0
    )
    text = (out / 'report.md').read_text()
    assert (out / 'trajectories.png').stat().st_size > 10_000
    assert (out / 'events.png').stat().st_size > 10_000
    rec = replay_report.read_bag(bag, replay_report.topics_from_profile(None), JOINTS)
    result = replay_report.replay(rec, tiny_bundle, 'event', '', '', 3, 0.5)
    # The wrist camera is missing for 1 s: frames more than 0.5 s into the gap are held.
    reasons = {reason for _, reason in result.holds}
    assert reasons == {'stale camera: wrist'}
    held_times = [t - rec.start for t, _ in result.holds]
    assert held_times and all(1.45 < t < 2.0 + 1e-6 for t in held_times), held_times
    assert {p.event_text for p in result.plans} == {
        'reach above the red cube',
        'grasp the red cube',
    }
    assert all(p.actions.shape[1] == 6 and np.all(np.isfinite(p.actions)) for p in result.plans)
    assert 'stale camera: wrist' in text and f'held: {len(result.holds)}' in text


def test_replay_report_says_what_is_missing(tmp_path, tiny_bundle, capsys):
    from wallwm_tools import replay_report

    bag = tmp_path / 'run'
    _write_bag(bag, seconds=0.5)
    code = replay_report.main(
        ['--bag', str(bag), '--bundle', str(tiny_bundle), '--profile', str(_profile(tmp_path))]
    )
    assert code == 2
    assert 'no /robot/joint_states messages' in capsys.readouterr().err


def _profile(tmp_path):
    path = tmp_path / 'profile.yaml'
    path.write_text(
        '/**:\n  ros__parameters:\n    cameras: {topics: [/a, /b], transport: raw}\n'
        '    joint_states_topic: /robot/joint_states\n    command_topic: /cmd\n'
    )
    return path
