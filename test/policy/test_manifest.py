"""Manifest schema: round trip; every kind of invalid manifest gives an error naming the field."""

import json

import pytest

from wallwm_policy.core import manifest as mf

J = 6
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def _tensor(name, dtype, shape):
    return {'name': name, 'dtype': dtype, 'shape': shape}


def _valid() -> dict:
    """A small but complete manifest offering all three modes."""
    obs = [_tensor('images', 'float32', [1, 2, 3, 32, 32]), _tensor('state', 'float32', [1, J])]
    return {
        'format': 'wallwm-bundle', 'format_version': 1, 'bundle_id': 'wallwm-test-0000',
        'created_by': {'wallwm_train': '0.1', 'torch': '2.13', 'onnx_opset': 18,
                       'config': 'tiny', 'seed': 0},
        'joint_names': JOINTS,
        'cameras': [{'name': 'front', 'height': 32, 'width': 32},
                    {'name': 'wrist', 'height': 32, 'width': 32}],
        'control_rate_hz': 30.0,
        'normalization': {'state': {'mean': [0.0] * J, 'std': [1.0] * J},
                          'action': {'mean': [0.0] * J, 'std': [1.0] * J}},
        'tokenizer': {'file': 'tokenizer.json', 'instruction_tokens': 8, 'event_tokens': 4,
                      'pad_id': 0},
        'modes': {
            'event': {'per_event': [], 'per_step': ['obs', 'event_sampler'], 'action_steps': 12,
                      'reads_instruction': False},
            'unified': {'per_event': ['obs', 'staircase'], 'per_step': ['obs', 'unified_sampler'],
                        'action_steps': 4, 'reads_instruction': True},
        },
        'graphs': {
            'obs': {'file': 'obs.onnx', 'inputs': obs,
                    'outputs': [_tensor('obs_tokens', 'float32', [1, 5, 16])]},
            'event_sampler': {
                'file': 'event_sampler.onnx',
                'inputs': [_tensor('obs_tokens', 'float32', [1, 5, 16]),
                           _tensor('event_ids', 'int64', [1, 4]),
                           _tensor('noise', 'float32', [1, 12, J])],
                'outputs': [_tensor('actions', 'float32', [1, 12, J]),
                            _tensor('boundary_logits', 'float32', [1, 12]),
                            _tensor('progress', 'float32', [1, 12])]},
            'staircase': {
                'file': 'staircase.onnx',
                'inputs': [_tensor('obs_tokens', 'float32', [1, 5, 16]),
                           _tensor('instruction_ids', 'int64', [1, 8])],
                'outputs': [_tensor('thoughts', 'float32', [1, 3, 16]),
                            _tensor('caption_ids', 'int64', [1, 4])]},
            'unified_sampler': {
                'file': 'unified_sampler.onnx',
                'inputs': [_tensor('obs_tokens', 'float32', [1, 5, 16]),
                           _tensor('thoughts', 'float32', [1, 3, 16]),
                           _tensor('noise', 'float32', [1, 4, J])],
                'outputs': [_tensor('actions', 'float32', [1, 4, J]),
                            _tensor('boundary_logits', 'float32', [1, 4]),
                            _tensor('progress', 'float32', [1, 4])]},
        },
        'files': {name: f'{i:064x}' for i, name in enumerate(
            ['tokenizer.json', 'obs.onnx', 'event_sampler.onnx', 'staircase.onnx',
             'unified_sampler.onnx'])},
    }


def test_round_trip_through_json(tmp_path):
    manifest = mf.Manifest.from_dict(_valid())
    path = mf.dump(manifest, tmp_path)
    assert path.name == 'manifest.json'
    loaded = mf.load(tmp_path)
    assert loaded == manifest
    assert json.loads(path.read_text()) == _valid()
    assert loaded.joint_names == tuple(JOINTS) and loaded.image_size == (32, 32)


def test_a_mode_without_reads_instruction_reads_it():
    """Bundles exported before the key existed (models/chunk_baseline) keep their behaviour."""
    data = _valid()
    for mode in data['modes'].values():
        del mode['reads_instruction']
    manifest = mf.Manifest.from_dict(data)
    assert all(mode.reads_instruction for mode in manifest.modes.values())


def _break(edit):
    data = _valid()
    edit(data)
    return data


@pytest.mark.parametrize('edit, needle', [
    (lambda d: d.update(format='other'), 'format'),
    (lambda d: d.update(format_version=2), 'format_version: bundle is format 2'),
    (lambda d: d.pop('joint_names'), 'joint_names: missing'),
    (lambda d: d.update(joint_names=JOINTS[:5] + ['gripper', 'gripper']), 'joint_names'),
    (lambda d: d['normalization']['state'].update(std=[1.0] * 5), 'normalization.state.std'),
    (lambda d: d['normalization']['action'].update(std=[0.0] * J), 'normalization.action.std'),
    (lambda d: d['cameras'][1].update(height=64), 'cameras[1]'),
    (lambda d: d['modes']['event'].update(per_step=['obs', 'nope']), 'modes.event.per_step[1]'),
    (lambda d: d['modes'].update(dance={'per_step': ['obs'], 'action_steps': 1}), 'modes.dance'),
    (lambda d: d['modes']['event'].update(action_steps=10), "input 'noise'"),
    (lambda d: d['graphs']['obs']['inputs'][0].update(shape=[1, 1, 3, 32, 32]), "'images'"),
    (lambda d: d['graphs']['staircase'].update(outputs=d['graphs']['staircase']['outputs'][:1]),
     'caption_ids'),
    (lambda d: d['graphs']['event_sampler'].update(
        outputs=d['graphs']['event_sampler']['outputs'][:1]), "'boundary_logits'"),
    (lambda d: d['graphs']['unified_sampler']['inputs'].append(
        _tensor('mystery', 'float32', [1])), "input 'mystery'"),
    (lambda d: d['files'].pop('staircase.onnx'), 'graphs.staircase.file'),
    (lambda d: d['files'].update({'../evil.onnx': '0' * 64}), 'plain file name'),
    (lambda d: d['files'].update({'obs.onnx': 'abc'}), 'files.obs.onnx'),
    (lambda d: d.update(control_rate_hz=0), 'control_rate_hz'),
    (lambda d: d['created_by'].pop('seed'), 'created_by'),
    (lambda d: d.update(extra_field=1), "unknown key(s) ['extra_field']"),
    (lambda d: d['tokenizer'].update(event_tokens='4'), 'tokenizer.event_tokens'),
    (lambda d: d['modes']['event'].update(reads_instruction='no'),
     'modes.event.reads_instruction'),
    (lambda d: d['modes']['unified'].update(reads_instruction=False),
     'modes.unified.reads_instruction: only event mode'),
])
def test_invalid_manifest_names_the_field(tmp_path, edit, needle):
    (tmp_path / 'manifest.json').write_text(json.dumps(_break(edit)))
    with pytest.raises(mf.ManifestError) as info:
        mf.load(tmp_path)
    assert needle in str(info.value)
    assert str(tmp_path / 'manifest.json') in str(info.value)


def test_unreadable_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(mf.ManifestError, match='manifest not found'):
        mf.load(tmp_path)
    (tmp_path / 'manifest.json').write_text('{"format": ')
    with pytest.raises(mf.ManifestError, match='not valid JSON'):
        mf.load(tmp_path)


def test_verify_files_names_missing_and_corrupt_files(tmp_path):
    names = ['tokenizer.json', 'obs.onnx']
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    data = _valid()
    data['modes'] = {'chunk': {'per_step': ['obs', 'chunk_sampler'], 'action_steps': 4}}
    data['graphs'] = {'obs': data['graphs']['obs'], 'chunk_sampler': {
        'file': 'obs.onnx', 'inputs': [_tensor('obs_tokens', 'float32', [1, 5, 16])],
        'outputs': [_tensor('actions', 'float32', [1, 4, J])]}}
    data['files'] = mf.hash_files(tmp_path, names)
    manifest = mf.Manifest.from_dict(data)
    mf.verify_files(manifest, tmp_path)
    (tmp_path / 'obs.onnx').write_bytes(b'flipped')
    with pytest.raises(mf.ManifestError, match=r'obs\.onnx: sha256 mismatch'):
        mf.verify_files(manifest, tmp_path)
    (tmp_path / 'obs.onnx').unlink()
    with pytest.raises(mf.ManifestError, match=r'obs\.onnx: listed in the manifest but missing'):
        mf.verify_files(manifest, tmp_path)
