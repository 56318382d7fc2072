"""Numerical tolerances, in one place (export parity tests, benchmarks)."""

# ONNX Runtime vs torch eager on the same inputs and noise: max |difference| per output.
ONNX_PARITY_ATOL = 1e-4
# Staircase: layer-major forward vs the literal wavefront schedule (same maths, other order).
STAIRCASE_WAVEFRONT_ATOL = 1e-5
