"""The workspace builds from clean with colcon, into a temporary build and install space."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_workspace_builds_from_clean(tmp_path):
    venv = Path(sys.prefix)
    env = {**os.environ, 'AMENT_PREFIX_PATH': str(venv), 'CMAKE_PREFIX_PATH': str(venv)}
    packages = sorted(p.parent.name for p in (REPO_ROOT / 'src').glob('*/package.xml'))
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'colcon',
            '--log-base',
            str(tmp_path / 'log'),
            'build',
            '--base-paths',
            str(REPO_ROOT / 'src'),
            '--build-base',
            str(tmp_path / 'build'),
            '--install-base',
            str(tmp_path / 'install'),
            '--metas',
            str(REPO_ROOT / 'colcon.meta'),
            '--event-handlers',
            'console_direct-',
            'summary+',
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for package in packages:
        assert (
            tmp_path / 'install' / package / 'share' / package / 'package.xml'
        ).is_file(), package
    generated = list((tmp_path / 'install' / 'wallwm_msgs').rglob('_event_command.py'))
    assert generated, 'no generated Python module for EventCommand'
