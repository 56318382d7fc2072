"""wallwm_sim: a MuJoCo SO-101 tabletop with event-narrating experts, and its ROS 2 bridge."""
