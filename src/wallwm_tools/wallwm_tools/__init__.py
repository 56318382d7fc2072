"""wallwm tools: recording, playback and offline replay of robot runs."""
