"""rclpy nodes over the simulation.

Headless rendering defaults, set before MuJoCo is imported (it picks its GL backend on import):
EGL, and no Mesa shader cache under the home directory (DESIGN.md §3). A user's own values win.
"""

import os

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('MESA_SHADER_CACHE_DISABLE', 'true')
