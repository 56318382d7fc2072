"""wallwm bringup: robot profiles and the node sets that launch files and the launcher start."""
