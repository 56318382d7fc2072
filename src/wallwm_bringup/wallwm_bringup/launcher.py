"""Start a wallwm setup without `ros2 launch` (pip-only machines, tests): the same nodes and YAML
as the launch files, each node in its own process; Ctrl-C stops them all.

    ros2 run wallwm_bringup launch sim --bundle models/default --mode event --task-family stack
    ros2 run wallwm_bringup launch replay --bag run1 --bundle <bundle> --profile so101_real
    install/wallwm_bringup/lib/wallwm_bringup/launch ...   (the same, without a ROS install)
"""

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from wallwm_bringup import system
from wallwm_bringup.profiles import ProfileError

STOP_TIMEOUT_S = 10.0


def executable(spec: system.NodeSpec) -> Path:
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix(spec.package)) / 'lib' / spec.package / spec.executable
    if not path.is_file():
        raise FileNotFoundError(f'{spec.package}: no executable {spec.executable} at {path}')
    return path


def command(spec: system.NodeSpec) -> list[str]:
    return [str(executable(spec)), *spec.ros_args()]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog='wallwm launch',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = root.add_subparsers(dest='setup', required=True)
    p = sub.add_parser('policy', help='the policy node on a robot profile')
    p.add_argument('--profile', required=True, help='profile name or YAML file')
    p.add_argument('--bundle', required=True, help='model bundle folder')
    p.add_argument('--mode', default='', choices=('', *system.MODES))
    p.add_argument('--use-sim-time', action='store_true')
    s = sub.add_parser('sim', help='MuJoCo bridge + policy on sim time')
    s.add_argument('--bundle', required=True)
    s.add_argument('--mode', default='event', choices=system.MODES)
    s.add_argument('--task-family', default='pick_place')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--split', default='train', choices=('train', 'heldout'))
    s.add_argument('--profile', default='so101_sim')
    s.add_argument('--record', default='', help='also record the run to this bag folder')
    r = sub.add_parser('replay', help='play a bag with /clock into the policy on sim time')
    r.add_argument('--bag', required=True)
    r.add_argument('--bundle', required=True)
    r.add_argument('--profile', required=True)
    r.add_argument('--mode', default='event', choices=system.MODES)
    r.add_argument('--rate', type=float, default=1.0)
    c = sub.add_parser('record', help='record a run to an mcap bag')
    c.add_argument('--output', required=True)
    c.add_argument('--topics', nargs='*', default=None)
    c.add_argument('--use-sim-time', action='store_true')
    return root


def specs_from_args(args: argparse.Namespace) -> list[system.NodeSpec]:
    kwargs = {k: v for k, v in vars(args).items() if k != 'setup'}
    return system.SETUPS[args.setup](**kwargs)


def run(specs: list[system.NodeSpec]) -> int:
    procs = []
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for spec in specs:
        print(f'[launch] {spec.name}: {" ".join(command(spec))}', flush=True)
        procs.append((spec, subprocess.Popen(command(spec))))
    status = 0
    while not stopping:
        for spec, proc in procs:
            if proc.poll() is not None:
                print(
                    f'[launch] {spec.name} exited with {proc.returncode}; stopping the rest',
                    flush=True,
                )
                status = proc.returncode or status
                stopping = True
        time.sleep(0.2)
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for _, proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    return status


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        specs = specs_from_args(args)
        for spec in specs:
            executable(spec)
    except (ProfileError, ValueError, FileNotFoundError) as error:
        print(f'[launch] error: {error}', file=sys.stderr)
        return 2
    return run(specs)


if __name__ == '__main__':
    sys.exit(main())
