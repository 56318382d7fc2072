import pytest


@pytest.fixture(scope='session')
def tiny_bundle(tmp_path_factory):
    """A bundle exported by the project's own tiny training config (a few seconds)."""
    from wallwm_train.testing import export_tiny_bundle

    return export_tiny_bundle(tmp_path_factory.mktemp('bringup_bundle') / 'bundle')
