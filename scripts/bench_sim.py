"""Simulation speed on one core: render frames/s and control steps/s (physics + cameras).

python scripts/bench_sim.py            # default settings (128x128, two cameras, no shadows)
"""

import argparse
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('MESA_SHADER_CACHE_DISABLE', 'true')

import numpy as np  # noqa: E402

from wallwm_sim.env.scene import SceneConfig  # noqa: E402
from wallwm_sim.env.tabletop_env import TabletopEnv  # noqa: E402


def bench(config: SceneConfig, seconds: float) -> tuple[float, float]:
    with TabletopEnv(config) as env:
        env.reset(0, 'pick_place')
        renderer = env._renderer
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            renderer.update_scene(env.data, camera=config.cameras[0])
            renderer.render()
            n += 1
        fps = n / (time.perf_counter() - start)
        rng = np.random.default_rng(0)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            env.step(env.home_qpos + rng.normal(0, 0.02, 6))
            n += 1
        return fps, n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seconds', type=float, default=5.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print(f'{"setting":<34} {"render fps (1 cam)":>18} {"control steps/s (2 cams)":>25}')
    for label, config in [
        ('128x128, no shadows (default)', SceneConfig()),
        ('128x128, shadows', SceneConfig(shadows=True)),
        ('224x224, no shadows', SceneConfig(image_height=224, image_width=224)),
    ]:
        fps, steps = bench(config, args.seconds)
        print(f'{label:<34} {fps:>18.0f} {steps:>25.0f}')


if __name__ == '__main__':
    main()
