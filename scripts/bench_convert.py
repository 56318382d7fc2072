#!/usr/bin/env python3
"""Conversion throughput of `wallwm-data convert`: rosbag2 -> LeRobot dataset, in frames/s.

Writes a bag to a temp dir (so101_sim topics: joint states, commands, two rgb8 cameras at the
contract's 128x128, 30 Hz; `--steps` control steps, so 2x that many camera frames), converts it,
and prints read+resample+PNG-encode+write throughput. Usage:

    python scripts/bench_convert.py --steps 3000 [--storage mcap|sqlite3] [--compressed]
"""

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores
from rosbags.typesys import get_typestore
from wallwm_train.data.lerobot import LeRobotDataset
from wallwm_train.data.rosbag import Profile
from wallwm_train.data.rosbag import builtin_profile
from wallwm_train.data.rosbag import convert

TS = get_typestore(Stores.ROS2_HUMBLE)
FPS = 30
SIZE = 128


def write_bag(path: Path, steps: int, storage: StoragePlugin, compressed: bool,
              profile: Profile) -> int:
    types = TS.types
    joints = list(profile.joint_names)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8)
    frames = 0
    with Writer(path, version=8, storage_plugin=storage) as writer:
        img_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
        suffix = '/compressed' if compressed else ''
        cams = {cam: writer.add_connection(topic + suffix, img_type, typestore=TS)
                for cam, topic in profile.cameras.items()}
        js = writer.add_connection(profile.joint_topic, 'sensor_msgs/msg/JointState', typestore=TS)
        cmd = writer.add_connection(profile.action_topic, 'trajectory_msgs/msg/JointTrajectory',
                                    typestore=TS)
        for k in range(steps):
            t = 1000.0 + k / FPS
            stamp = types['builtin_interfaces/msg/Time'](sec=int(t), nanosec=int((t % 1) * 1e9))
            header = types['std_msgs/msg/Header'](stamp=stamp, frame_id='base')
            q = np.sin(t + np.arange(len(joints)))
            msg = types['sensor_msgs/msg/JointState'](header=header, name=joints, position=q,
                                                      velocity=np.zeros(0), effort=np.zeros(0))
            ns = int(t * 1e9)
            writer.write(js, ns, TS.serialize_cdr(msg, msg.__msgtype__))
            point = types['trajectory_msgs/msg/JointTrajectoryPoint'](
                positions=q + 0.01, velocities=np.zeros(0), accelerations=np.zeros(0),
                effort=np.zeros(0),
                time_from_start=types['builtin_interfaces/msg/Duration'](sec=0, nanosec=0))
            msg = types['trajectory_msgs/msg/JointTrajectory'](header=header, joint_names=joints,
                                                               points=[point])
            writer.write(cmd, ns, TS.serialize_cdr(msg, msg.__msgtype__))
            for i, conn in enumerate(cams.values()):
                img = np.roll(base, k + i, axis=1)
                if compressed:
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format='JPEG', quality=90)
                    msg = types['sensor_msgs/msg/CompressedImage'](
                        header=header, format='jpeg', data=np.frombuffer(buf.getvalue(), np.uint8))
                else:
                    msg = types['sensor_msgs/msg/Image'](
                        header=header, height=SIZE, width=SIZE, encoding='rgb8', is_bigendian=0,
                        step=SIZE * 3, data=img.reshape(-1))
                writer.write(conn, ns, TS.serialize_cdr(msg, msg.__msgtype__))
                frames += 1
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=3000)
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--compressed', action='store_true', help='JPEG CompressedImage cameras')
    args = parser.parse_args()
    profile = Profile.load(builtin_profile('so101_sim'))
    storage = StoragePlugin.MCAP if args.storage == 'mcap' else StoragePlugin.SQLITE3
    if args.compressed:
        profile = Profile(joint_names=profile.joint_names,
                          cameras={c: t + '/compressed' for c, t in profile.cameras.items()})
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / 'bench'
        frames = write_bag(bag, args.steps, storage, args.compressed, profile)
        size = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
        start = time.perf_counter()
        report = convert(bag, Path(tmp) / 'ds', profile)
        seconds = time.perf_counter() - start
        ds = LeRobotDataset(Path(tmp) / 'ds')
        steps = sum(report.episodes)
        print(f'bag: {args.storage}, {"jpeg" if args.compressed else "rgb8"} '
              f'{SIZE}x{SIZE}, {len(profile.cameras)} cameras, {frames} camera frames, '
              f'{args.steps} steps, {size:.1f} MB')
        print(f'converted: {ds.num_episodes} episode(s), {steps} steps, {report.frames} frames '
              f'in {seconds:.2f} s')
        print(f'throughput: {report.frames / seconds:.0f} camera frames/s '
              f'({steps / seconds:.0f} control steps/s)')


if __name__ == '__main__':
    main()
