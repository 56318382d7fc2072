"""Bundles for the node tests and the benchmark."""

from pathlib import Path

from synthetic_bundle import build_bundle


def real_bundle(tmp: Path) -> Path:
    # TODO(policy): switch to the bundle exported by the project's tiny training config.
    return build_bundle(tmp / 'bundle')
