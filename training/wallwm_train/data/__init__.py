"""Event datasets: the LeRobotDataset v3.0 layout with our events table, and cluster-balanced
sampling of events."""
