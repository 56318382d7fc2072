"""Fixtures of the policy tests: the bundle exported by the project's own tiny training config."""

import pytest


def export_tiny(path, **options):
    """`wallwm_train.testing.export_tiny_bundle` on one torch thread (the cores are shared)."""
    torch = pytest.importorskip('torch')
    from wallwm_train.testing import export_tiny_bundle

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return export_tiny_bundle(path, **options)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_exporter():
    """`export_tiny` for tests that train a tiny bundle of their own (with `overrides`)."""
    return export_tiny


@pytest.fixture(scope='session')
def tiny_bundle(tmp_path_factory):
    """A real bundle: `wallwm_train` trains the tiny config briefly and exports all three modes
    (about 10-30 s on 2 shared cores, once per session)."""
    return export_tiny(tmp_path_factory.mktemp('tiny_bundle') / 'bundle')
