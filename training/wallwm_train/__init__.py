"""WALL-WM training stack: the PyTorch side of wallwm (nothing under src/ imports it)."""

__version__ = '0.1.0'
