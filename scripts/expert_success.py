"""Success rate of the scripted expert per task family over many seeds (prints a table).

python scripts/expert_success.py --seeds 100
"""

import argparse
import time

from tqdm import tqdm

from wallwm_sim.env.expert import run_expert
from wallwm_sim.env.tabletop_env import TabletopEnv
from wallwm_sim.env.tasks import TASK_FAMILIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seeds', type=int, default=100)
    parser.add_argument('--families', nargs='*', default=sorted(TASK_FAMILIES))
    args = parser.parse_args()
    env = TabletopEnv(render=False)
    rows = []
    for family in args.families:
        start = time.perf_counter()
        failures, steps = [], 0
        for seed in tqdm(range(args.seeds), desc=family):
            _, actions, _, _, success = run_expert(env, seed, family, render=False)
            steps += len(actions)
            if not success:
                failures.append(seed)
        rows.append(
            (
                family,
                args.seeds - len(failures),
                failures,
                steps / args.seeds,
                time.perf_counter() - start,
            )
        )
    print(f'\n{"family":<12} {"success":>8} {"rate":>6} {"mean steps":>10}  failed seeds')
    for family, ok, failures, mean_steps, _ in rows:
        print(
            f'{family:<12} {ok:>4}/{args.seeds:<3} {ok / args.seeds:>6.0%} {mean_steps:>10.0f}  '
            f'{failures[:12]}{" ..." if len(failures) > 12 else ""}'
        )


if __name__ == '__main__':
    main()
