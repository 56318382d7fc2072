"""rosbag2 bags written here with `rosbags` (mcap and sqlite3) convert into valid datasets."""

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore
from wallwm_train.data.lerobot import LeRobotDataset
from wallwm_train.data.lerobot import validate
from wallwm_train.data.rosbag import Profile
from wallwm_train.data.rosbag import builtin_profile
from wallwm_train.data.rosbag import convert

TS = get_typestore(Stores.ROS2_HUMBLE)
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
T0 = 100.0
FPS = 30


def _time(t):
    sec = int(t)
    return TS.types['builtin_interfaces/msg/Time'](sec=sec, nanosec=int(round((t - sec) * 1e9)))


def _header(t):
    return TS.types['std_msgs/msg/Header'](stamp=_time(t), frame_id='f')


def _q(t):
    return np.array([0.5 * np.sin(t + i) for i in range(6)])


def _tf_messages():
    """base_link -static-> shoulder -/tf at 50 Hz-> upper_arm -static-> gripper_tip: the upper
    arm turns about z by 0.3 rad/s, the tip sits 0.2 m along its x axis."""
    tf_t = TS.types['geometry_msgs/msg/TransformStamped']
    tr_t = TS.types['geometry_msgs/msg/Transform']
    vec, quat = TS.types['geometry_msgs/msg/Vector3'], TS.types['geometry_msgs/msg/Quaternion']
    msg_t = TS.types['tf2_msgs/msg/TFMessage']

    def stamped(t, parent, child, xyz, yaw):
        return tf_t(header=TS.types['std_msgs/msg/Header'](stamp=_time(t), frame_id=parent),
                    child_frame_id=child,
                    transform=tr_t(translation=vec(x=xyz[0], y=xyz[1], z=xyz[2]),
                                   rotation=quat(x=0.0, y=0.0, z=np.sin(yaw / 2),
                                                 w=np.cos(yaw / 2))))

    static = msg_t(transforms=[stamped(T0, 'base_link', 'shoulder', (0, 0, 0.1), 0.0),
                               stamped(T0, 'upper_arm', 'gripper_tip', (0.2, 0, 0), 0.0)])
    msgs = [('/tf_static', static, msg_t.__msgtype__, T0)]
    for k in range(0, 201):
        t = T0 + k / 50
        msgs.append(('/tf', msg_t(transforms=[stamped(t, 'shoulder', 'upper_arm', (0, 0, 0),
                                                      0.3 * (t - T0))]), msg_t.__msgtype__, t))
    return msgs


def write_bag(path, storage, front_color=(200, 10, 20), tf=False):
    """4 s at 30 Hz: front raw rgb8; wrist compressed PNG starting 0.5 s late; joint states in
    a shuffled order with an extra joint, duplicated and out-of-order; no joints in 2.0-3.0 s;
    with `tf`, the transforms of `_tf_messages`."""
    js_t = TS.types['sensor_msgs/msg/JointState']
    img_t = TS.types['sensor_msgs/msg/Image']
    cimg_t = TS.types['sensor_msgs/msg/CompressedImage']
    traj_t = TS.types['trajectory_msgs/msg/JointTrajectory']
    point_t = TS.types['trajectory_msgs/msg/JointTrajectoryPoint']
    dur = TS.types['builtin_interfaces/msg/Duration']
    msgs = _tf_messages() if tf else []
    order = [3, 5, 0, 2, 1, 4]
    for k in range(0, 120):
        t = T0 + k / FPS
        if not 2.0 <= k / FPS < 3.0:
            q = _q(t - T0)
            names = [JOINTS[i] for i in order] + ['extra_joint']
            pos = np.r_[q[order], 9.0]
            msg = js_t(header=_header(t), name=names, position=pos, velocity=np.zeros(0),
                       effort=np.zeros(0))
            msgs.append(('/joint_states', msg, js_t.__msgtype__, t))
            if k == 10:
                msgs.append(('/joint_states', msg, js_t.__msgtype__, t))   # duplicated stamp
        front = np.zeros((16, 20, 3), np.uint8)
        front[:] = front_color
        front[0, 0, 0] = k
        msgs.append(('/camera/front/image_raw',
                     img_t(header=_header(t), height=16, width=20, encoding='rgb8',
                           is_bigendian=0, step=60, data=front.reshape(-1)),
                     img_t.__msgtype__, t))
        if k / FPS >= 0.5:
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), k, np.uint8)).save(buf, format='PNG')
            msgs.append(('/camera/wrist/image_raw/compressed',
                         cimg_t(header=_header(t), format='png',
                                data=np.frombuffer(buf.getvalue(), np.uint8)),
                         cimg_t.__msgtype__, t))
        if k % 3 == 0:
            pt = point_t(positions=_q(t - T0 + 0.1), velocities=np.zeros(0),
                         accelerations=np.zeros(0), effort=np.zeros(0),
                         time_from_start=dur(sec=0, nanosec=0))
            msgs.append(('/joint_trajectory_controller/joint_trajectory',
                         traj_t(header=_header(t), joint_names=JOINTS, points=[pt]),
                         traj_t.__msgtype__, t))
    rng = np.random.default_rng(0)
    swap = rng.permutation(len(msgs))[:20]   # receive order differs from stamps for some
    receive = [m[3] for m in msgs]
    for a, b in zip(swap[::2], swap[1::2], strict=False):
        receive[a], receive[b] = receive[b], receive[a]
    with Writer(path, version=8, storage_plugin=storage) as writer:
        conns = {}
        for topic, _msg, msgtype, _ in msgs:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
        for (topic, msg, msgtype, _), t in sorted(zip(msgs, receive, strict=True),
                                                  key=lambda x: x[1]):
            writer.write(conns[topic], int(t * 1e9), TS.serialize_cdr(msg, msgtype))


def profile():
    base = Profile.load(builtin_profile('so101_sim'))
    return Profile(joint_names=base.joint_names,
                   cameras={'front': '/camera/front/image_raw',
                            'wrist': '/camera/wrist/image_raw/compressed'})


@pytest.mark.parametrize('storage', [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_convert_bag_with_sidecar(tmp_path, storage):
    bag = tmp_path / 'rec'
    write_bag(bag, storage)
    sidecar = {'episodes': [{'start_time': T0, 'end_time': T0 + 2.0, 'task': 'wave',
                             'events': [{'start_time': T0 + 0.5, 'end_time': T0 + 1.2,
                                         'caption': 'raise the arm'},
                                        {'start_time': T0 + 1.2, 'end_time': T0 + 2.0,
                                         'caption': 'lower the arm'}]}]}
    (tmp_path / 'rec.events.json').write_text(json.dumps(sidecar))
    out = tmp_path / 'ds'
    report = convert(bag, out, profile())
    assert validate(out) == []
    ds = LeRobotDataset(out)
    assert ds.camera_names == ['front', 'wrist'] and ds.joint_names == JOINTS
    # the wrist camera starts 0.5 s late: the grid runs 100.5 .. 102.0, and 102.0 falls in the
    # joint gap (no interpolation across it): 45 steps
    assert report.episodes == [45]
    assert any('late topic' in d for d in report.dropped)
    assert any('duplicated' in d for d in report.dropped)
    ep = ds.episode(0)
    assert ep.task == 'wave'
    assert [(e.start, e.end, e.caption, e.source) for e in ep.events] == [
        (0, 21, 'raise the arm', 'sidecar'), (21, 45, 'lower the arm', 'sidecar')]
    grid = T0 + 0.5 + np.arange(45) / FPS
    expected = np.stack([_q(t - T0) for t in grid])
    np.testing.assert_allclose(ep.state, expected, atol=1e-4)   # joints reordered, extra dropped
    assert ep.images['front'].shape == (45, 16, 20, 3)
    np.testing.assert_array_equal(ep.images['front'][:, 0, 0, 0], np.arange(15, 60))
    np.testing.assert_array_equal(ep.images['front'][:, 5, 5], np.tile([200, 10, 20], (45, 1)))
    np.testing.assert_array_equal(ep.images['wrist'][:, 0, 0, 0], np.arange(15, 60))
    # action: first point of the latest command (sent every 3rd step) at or before t
    k = np.arange(15, 60) // 3 * 3
    np.testing.assert_allclose(ep.action, np.stack([_q(kk / FPS + 0.1) for kk in k]), atol=1e-5)


def test_convert_whole_bag_splits_at_gap_and_segments(tmp_path):
    bag = tmp_path / 'rec'
    write_bag(bag, StoragePlugin.MCAP)
    out = tmp_path / 'ds'
    report = convert(bag, out, profile())
    assert validate(out) == []
    # 100.5 .. 103.9667: no joints in 102.0-103.0, that second is dropped and the bag split
    assert report.episodes == [45, 30]
    assert any('/joint_states' in d and 'gap' in d for d in report.dropped)
    ds = LeRobotDataset(out)
    assert ds.num_episodes == 2
    assert all(e.source == 'auto' for _, e in ds.events)
    for i, length in enumerate(report.episodes):
        evs = [e for ep, e in ds.events if ep == i]
        assert evs[0].start == 0 and evs[-1].end == length


def test_end_effector_pose_from_tf(tmp_path):
    bag = tmp_path / 'rec'
    write_bag(bag, StoragePlugin.MCAP, tf=True)
    with_tf = dataclasses.replace(profile(), tf_base_frame='base_link',
                                  tf_ee_frame='gripper_tip')
    convert(bag, tmp_path / 'ds', with_tf)
    assert validate(tmp_path / 'ds') == []
    ds = LeRobotDataset(tmp_path / 'ds')
    assert ds.extra_features == ['observation.ee_pose']
    ep = ds.episode(0)
    yaw = 0.3 * (0.5 + np.arange(len(ep.state)) / FPS)   # the episode starts with the wrist cam
    expected = np.stack([0.2 * np.cos(yaw), 0.2 * np.sin(yaw), np.full_like(yaw, 0.1),
                         0 * yaw, 0 * yaw, np.sin(yaw / 2), np.cos(yaw / 2)], 1)
    np.testing.assert_allclose(ep.extra['observation.ee_pose'], expected, atol=1e-5)

    unconnected = dataclasses.replace(with_tf, tf_ee_frame='camera_link')
    with pytest.raises(ValueError, match="no transform chain connects 'base_link' and "
                                         "'camera_link'"):
        convert(bag, tmp_path / 'x', unconnected)
    write_bag(tmp_path / 'no_tf', StoragePlugin.MCAP)
    with pytest.raises(ValueError, match='no /tf or /tf_static'):
        convert(tmp_path / 'no_tf', tmp_path / 'y', with_tf)
    assert not (tmp_path / 'x').exists() and not (tmp_path / 'y').exists()


def test_missing_topic_and_bad_encoding_are_clear_errors(tmp_path):
    bag = tmp_path / 'rec'
    write_bag(bag, StoragePlugin.MCAP)
    bad = Profile(joint_names=tuple(JOINTS), cameras={'front': '/camera/nope'})
    with pytest.raises(ValueError, match="required topic '/camera/nope' missing"):
        convert(bag, tmp_path / 'x', bad)
    assert not (tmp_path / 'x').exists()


def test_cli_convert_then_segment(tmp_path, capsys):
    from wallwm_train.data.cli import main

    bag = tmp_path / 'rec'
    write_bag(bag, StoragePlugin.SQLITE3)
    prof = tmp_path / 'p.yaml'
    prof.write_text('joint_names: [' + ', '.join(JOINTS) + ']\n'
                    'cameras: {front: /camera/front/image_raw, '
                    'wrist: /camera/wrist/image_raw/compressed}\n')
    assert main(['convert', str(bag), str(tmp_path / 'ds'), '--profile', str(prof)]) == 0
    assert 'episodes: 2 lengths [45, 30]' in capsys.readouterr().out
    assert main(['segment', str(tmp_path / 'ds'), str(tmp_path / 'seg')]) == 0
    assert validate(tmp_path / 'seg') == []
    assert main(['convert', str(bag), str(tmp_path / 'ds'), '--profile', str(prof)]) == 2
    assert 'exists' in capsys.readouterr().err
