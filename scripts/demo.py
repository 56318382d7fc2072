"""The closed-loop demo: the MuJoCo sim and the policy node over ROS 2, driven by event goals,
with a report (GIF of the camera, joint trajectories, event timeline, success per episode).

    scripts/demo.sh                      # sets up, then runs this
    python scripts/demo.py --bundle models/default --families pick_place stack

Without `--bundle` it uses the shipped `models/default` (models/README.md says how it was
trained and how to reproduce it).
ROS traffic stays on this machine (loopback Fast DDS profile, random domain id).
"""

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = REPO / 'models' / 'default'


def ros_environment(log_dir: Path) -> dict:
    return {**os.environ,
            'ROS_DOMAIN_ID': str(random.SystemRandom().randint(1, 100)),
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
            'FASTDDS_DEFAULT_PROFILES_FILE': str(REPO / 'test' / 'fastdds_loopback.xml'),
            'ROS_LOG_DIR': str(log_dir), 'MUJOCO_GL': os.environ.get('MUJOCO_GL', 'egl'),
            'MESA_SHADER_CACHE_DISABLE': 'true'}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bundle', type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument('--families', nargs='*',
                        default=['pick_place', 'stack', 'bin_ordered', 'push'])
    parser.add_argument('--seed', type=int, default=7, help='first held-out episode seed')
    parser.add_argument('--event-timeout', type=float, default=6.0, help='seconds per event')
    parser.add_argument('--out', type=Path, default=REPO / 'outputs' / 'demo')
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    bundle = args.bundle
    if not (bundle / 'manifest.json').is_file():
        print(f'[demo] {bundle}: no model bundle there (models/README.md: how to train one)',
              file=sys.stderr)
        return 2
    print(f'[demo] bundle: {bundle}')

    env = ros_environment(args.out / 'ros_log')
    os.environ.update(env)
    launcher = REPO / 'install' / 'wallwm_bringup' / 'lib' / 'wallwm_bringup' / 'launch'
    bag = args.out / 'run_bag'
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    log = open(args.out / 'nodes.log', 'w')  # noqa: SIM115
    nodes = subprocess.Popen([str(launcher), 'sim', '--bundle', str(bundle), '--mode', 'event',
                              '--task-family', args.families[0], '--seed', str(args.seed),
                              '--split', 'heldout', '--record', str(bag)],
                             env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        from demo_client import run_episodes  # scripts/demo_client.py

        results = run_episodes(args.families, args.seed, args.event_timeout)
    finally:
        os.killpg(nodes.pid, 2)
        nodes.wait(timeout=20)
        log.close()
    from demo_report import write_report  # scripts/demo_report.py

    report = write_report(results, args.out, bundle)
    print(f'[demo] report: {report}')
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
