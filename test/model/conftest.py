"""Shared fixtures for the model tests: one torch thread (the machine is shared), tiny config,
procedural episodes (wallwm_train.testing, also used by the runtime tests for a tiny bundle)."""

import pytest
import torch
from wallwm_train.config import load_config
from wallwm_train.testing import synthetic_episodes

torch.set_num_threads(1)


@pytest.fixture
def tiny():
    return load_config('tiny')


@pytest.fixture(scope='session')
def episodes():
    return synthetic_episodes()
