"""Rolling timing statistics for diagnostics and benchmarks."""

from __future__ import annotations

from collections import deque

import numpy as np


class Window:
    """The last `size` samples of a quantity (seconds), with percentiles."""

    def __init__(self, size: int = 300):
        self._values = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(float(value))

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float:
        """q in [0, 100]; NaN when empty."""
        if not self._values:
            return float('nan')
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64), q))

    def rate_hz(self) -> float:
        """For a window of event times: events per second over the window."""
        if len(self._values) < 2:
            return 0.0
        span = self._values[-1] - self._values[0]
        return (len(self._values) - 1) / span if span > 0 else 0.0
