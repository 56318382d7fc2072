"""Robot profiles validate, broken ones say exactly what is wrong, and launch files only name
things that exist in the install space."""

import ast
from pathlib import Path

import pytest
import yaml

from wallwm_bringup import profiles
from wallwm_bringup import system
from wallwm_bringup.launcher import executable

BRINGUP = Path(__file__).resolve().parents[2] / 'src' / 'wallwm_bringup'
EXPECTED = {'so101_sim', 'so101_real', 'franka_fr3', 'ur5e', 'gazebo_so101', 'isaac_so101'}


def test_every_shipped_profile_validates():
    assert EXPECTED <= set(profiles.available_profiles())
    for name in profiles.available_profiles():
        profile = profiles.load(name)
        assert len(profile.joint_names) == len(profile.lower) == len(profile.max_velocity)
        assert all(lo < hi for lo, hi in zip(profile.lower, profile.upper, strict=True))


def _broken(tmp_path, edit) -> Path:
    document = yaml.safe_load(profiles.resolve('so101_sim').read_text())
    edit(document['/**']['ros__parameters'])
    path = tmp_path / 'broken.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    'edit, message',
    [
        (
            lambda p: p['joint_limits'].update(lower=[0.0] * 5),
            'joint_limits.lower: 5 values for 6',
        ),
        (
            lambda p: p['joint_limits']['upper'].__setitem__(2, -5.0),
            'elbow_flex: lower -1.69 is not below',
        ),
        (lambda p: p['joint_limits'].update(max_velocity=[1, 1, 1, 1, 1, -1]), 'must be positive'),
        (lambda p: p['cameras'].update(transport='h264'), "cameras.transport: 'h264'"),
        (lambda p: p['profile'].update(camera_encodings=['rgb8']), '1 encodings for 2 cameras'),
        (lambda p: p.pop('command_topic'), 'command_topic: missing'),
        (lambda p: p['profile'].update(control_rate_hz='fast'), 'profile.control_rate_hz'),
    ],
)
def test_a_broken_profile_names_the_problem(tmp_path, edit, message):
    with pytest.raises(profiles.ProfileError, match='invalid robot profile') as error:
        profiles.load(str(_broken(tmp_path, edit)))
    assert message in str(error.value)
    assert 'broken.yaml' in str(error.value)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(profiles.ProfileError, match='available'):
        profiles.load('robby_the_robot')


def test_every_setup_names_installed_executables_and_files(tmp_path):
    bundle = str(tmp_path)
    setups = [
        system.SETUPS['policy'](profile='so101_real', bundle=bundle, mode='event'),
        system.SETUPS['sim'](bundle=bundle, mode='unified', task_family='stack', record='run'),
        system.SETUPS['replay'](bag='bag', bundle=bundle, profile='ur5e'),
        system.SETUPS['record'](output='run'),
    ]
    for specs in setups:
        for spec in specs:
            assert executable(spec).is_file()
            for params_file in spec.params_files:
                assert Path(params_file).is_file()
    with pytest.raises(ValueError, match='mode'):
        system.policy('so101_sim', bundle, mode='chunky')


@pytest.mark.parametrize(
    'launch_file', sorted((BRINGUP / 'launch').glob('*.launch.py')), ids=lambda p: p.name
)
def test_launch_files_are_thin_and_document_every_argument(launch_file):
    tree = ast.parse(launch_file.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    declared = [c for c in calls if getattr(c.func, 'id', '') == 'DeclareLaunchArgument']
    assert declared, 'no launch arguments'
    for call in declared:
        assert any(k.arg == 'description' for k in call.keywords), ast.unparse(call)
    # Nodes come from wallwm_bringup.system (shared with the launcher), not from literals here.
    used = {
        c.func.attr
        for c in calls
        if isinstance(c.func, ast.Attribute) and getattr(c.func.value, 'id', '') == 'system'
    }
    assert used and used <= {'policy', 'sim_setup', 'replay_setup', 'recorder'}
    node_calls = [c for c in calls if getattr(c.func, 'id', '') == 'Node']
    for call in node_calls:
        package = next(k.value for k in call.keywords if k.arg == 'package')
        assert not isinstance(package, ast.Constant), 'package names belong in system.py'
    installed = Path(profiles.profiles_dir()).parents[1] / 'launch' / launch_file.name
    assert installed.is_file(), f'{launch_file.name} is not installed'
