"""The simulation itself (MuJoCo, numpy); no ROS imports, so data generation runs without ROS."""
