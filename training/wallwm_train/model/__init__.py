"""WALL-WM network: one module per component, assembled in `wallwm.WallWM`."""
