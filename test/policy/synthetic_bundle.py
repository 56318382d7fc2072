"""Small hand-built bundles (onnx.helper) that follow the contract's names and shapes.

Used by the core tests where behaviour must be known exactly: actions move every joint by
`delta` per step from the current state; the boundary logit of a step is
`gain * (planned shoulder_pan - target)`, so an event ends when the arm's first joint passes
`target` in closed loop; unified mode decodes the fixed caption `caption`; any state with
shoulder_pan above `nan_above` makes the model return NaN. The node tests use the real bundle
exported by the project's training code instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper
from tokenizers import Tokenizer
from tokenizers import models
from tokenizers import pre_tokenizers

from wallwm_policy.core import manifest as mf

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
WORDS = ('[PAD]', '[UNK]', 'reach', 'the', 'red', 'cube', 'grasp', 'put', 'in', 'bin', 'lift')
_F32 = TensorProto.FLOAT
_I64 = TensorProto.INT64


@dataclass(frozen=True)
class SyntheticSpec:
    cameras: tuple[str, ...] = ('front', 'wrist')
    size: int = 32
    modes: tuple[str, ...] = (mf.MODE_EVENT, mf.MODE_UNIFIED, mf.MODE_CHUNK)
    event_steps: int = 24
    chunk_steps: int = 8
    delta: float = 0.02          # rad per step, every joint
    target: float = 0.3          # shoulder_pan where the boundary fires
    gain: float = 50.0
    nan_above: float = 1e9       # shoulder_pan above this -> NaN actions
    caption: str = 'grasp the red cube'
    instruction_tokens: int = 8
    event_tokens: int = 6


def _value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _save(graph, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _observation_encoder(spec: SyntheticSpec, path: Path) -> int:
    n, s, j = len(spec.cameras), spec.size, len(JOINTS)
    features = n * 3 + j
    nodes = [
        helper.make_node('ReduceMean', ['images', 'axes'], ['pooled'], keepdims=0),  # (1, N, 3)
        helper.make_node('Reshape', ['pooled', 'flat_shape'], ['flat']),              # (1, N*3)
        helper.make_node('Concat', ['state', 'flat'], ['obs_features'], axis=1),      # (1, F)
    ]
    graph = helper.make_graph(
        nodes, 'observation_encoder',
        [_value('images', _F32, [1, n, 3, s, s]), _value('state', _F32, [1, j])],
        [_value('obs_features', _F32, [1, features])],
        [_const('axes', np.array([3, 4], np.int64)),
         _const('flat_shape', np.array([1, n * 3], np.int64))])
    _save(graph, path)
    return features


def _sampler(spec: SyntheticSpec, path: Path, name: str, steps: int, features: int,
             extra_inputs: list, with_boundary: bool) -> None:
    """actions[s] = state + (s+1)*delta (+ NaN when shoulder_pan > nan_above)."""
    j = len(JOINTS)
    inits = [
        _const('ramp', (np.arange(1, steps + 1, dtype=np.float32) * spec.delta)[:, None]),
        _const('starts', np.array([0], np.int64)), _const('ends', np.array([j], np.int64)),
        _const('axis1', np.array([1], np.int64)),
        _const('nan_above', np.array(spec.nan_above, np.float32)),
        _const('nan', np.array(np.nan, np.float32)), _const('zero', np.array(0.0, np.float32)),
        _const('target', np.array(spec.target, np.float32)),
        _const('gain', np.array(spec.gain, np.float32)),
        _const('pan_index', np.array(0, np.int64)),
    ]
    nodes = [
        helper.make_node('Slice', ['obs_features', 'starts', 'ends', 'axis1'], ['state']),
        helper.make_node('Unsqueeze', ['state', 'axis1'], ['state3']),             # (1, 1, J)
        helper.make_node('Add', ['state3', 'ramp'], ['planned']),                  # (1, S, J)
        helper.make_node('Gather', ['state', 'pan_index'], ['pan'], axis=1),       # (1,)
        helper.make_node('Greater', ['pan', 'nan_above'], ['is_bad']),
        helper.make_node('Where', ['is_bad', 'nan', 'zero'], ['poison']),
        helper.make_node('Add', ['planned', 'poison'], ['actions']),
    ]
    outputs = [_value('actions', _F32, [1, steps, j])]
    if with_boundary:
        nodes += [
            helper.make_node('Gather', ['actions', 'pan_index'], ['planned_pan'], axis=2),
            helper.make_node('Sub', ['planned_pan', 'target'], ['past']),
            helper.make_node('Mul', ['past', 'gain'], ['boundary_logits']),    # (1, S)
            helper.make_node('Sigmoid', ['boundary_logits'], ['progress']),    # (1, S)
        ]
        outputs += [_value('boundary_logits', _F32, [1, steps]),
                    _value('progress', _F32, [1, steps])]
    inputs = [_value('obs_features', _F32, [1, features]),
              _value('noise', _F32, [1, steps, j])] + extra_inputs
    _save(helper.make_graph(nodes, name, inputs, outputs, inits), path)


def _staircase(spec: SyntheticSpec, path: Path, features: int, caption_ids: np.ndarray) -> None:
    nodes = [
        helper.make_node('Unsqueeze', ['obs_features', 'axis1'], ['thoughts']),  # (1, 1, F)
        helper.make_node('Identity', ['caption_const'], ['caption_ids']),
    ]
    graph = helper.make_graph(
        nodes, 'staircase',
        [_value('obs_features', _F32, [1, features]),
         _value('instruction_ids', _I64, [1, spec.instruction_tokens]),
         _value('instruction_mask', _I64, [1, spec.instruction_tokens])],
        [_value('thoughts', _F32, [1, 1, features]),
         _value('caption_ids', _I64, [1, spec.event_tokens])],
        [_const('axis1', np.array([1], np.int64)), _const('caption_const', caption_ids)])
    _save(graph, path)


def _tensor_specs(path: Path, kind: str) -> list[mf.TensorSpec]:
    model = onnx.load(str(path))
    values = model.graph.input if kind == 'inputs' else model.graph.output
    dtypes = {_F32: 'float32', _I64: 'int64'}
    return [mf.TensorSpec(v.name, dtypes[v.type.tensor_type.elem_type],
                          tuple(d.dim_value for d in v.type.tensor_type.shape.dim))
            for v in values]


def build_bundle(root: Path, spec: SyntheticSpec | None = None) -> Path:
    """Write a complete bundle folder at `root`; returns it."""
    spec = spec or SyntheticSpec()
    root.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token='[UNK]'))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(root / 'tokenizer.json'))
    caption_ids = np.zeros((1, spec.event_tokens), np.int64)
    ids = tokenizer.encode(spec.caption).ids[:spec.event_tokens]
    caption_ids[0, :len(ids)] = ids

    features = _observation_encoder(spec, root / 'observation_encoder.onnx')
    files = {'observation_encoder': 'observation_encoder.onnx'}
    modes = {}
    text = {
        'event_ids': _value('event_ids', _I64, [1, spec.event_tokens]),
        'event_mask': _value('event_mask', _I64, [1, spec.event_tokens]),
        'instruction_ids': _value('instruction_ids', _I64, [1, spec.instruction_tokens]),
        'thoughts': _value('thoughts', _F32, [1, 1, features]),
    }
    if mf.MODE_EVENT in spec.modes:
        _sampler(spec, root / 'event_sampler.onnx', 'event_sampler', spec.event_steps, features,
                 [text['event_ids'], text['event_mask']], True)
        files['event_sampler'] = 'event_sampler.onnx'
        modes[mf.MODE_EVENT] = mf.ModeSpec((), ('observation_encoder', 'event_sampler'),
                                           spec.event_steps)
    if mf.MODE_UNIFIED in spec.modes:
        _staircase(spec, root / 'staircase.onnx', features, caption_ids)
        _sampler(spec, root / 'unified_sampler.onnx', 'unified_sampler', spec.chunk_steps,
                 features, [text['thoughts']], True)
        files.update(staircase='staircase.onnx', unified_sampler='unified_sampler.onnx')
        modes[mf.MODE_UNIFIED] = mf.ModeSpec(('observation_encoder', 'staircase'),
                                             ('observation_encoder', 'unified_sampler'),
                                             spec.chunk_steps)
    if mf.MODE_CHUNK in spec.modes:
        _sampler(spec, root / 'chunk_sampler.onnx', 'chunk_sampler', spec.chunk_steps, features,
                 [text['instruction_ids']], False)
        files['chunk_sampler'] = 'chunk_sampler.onnx'
        modes[mf.MODE_CHUNK] = mf.ModeSpec((), ('observation_encoder', 'chunk_sampler'),
                                           spec.chunk_steps)
    graphs = {name: mf.GraphSpec(file, _tensor_specs(root / file, 'inputs'),
                                 _tensor_specs(root / file, 'outputs'))
              for name, file in files.items()}
    j = len(JOINTS)
    manifest = mf.Manifest(
        bundle_id='wallwm-synthetic-0000',
        created_by={'wallwm_train': 'synthetic', 'torch': 'none', 'onnx_opset': 18,
                    'config': 'synthetic', 'seed': 0},
        joint_names=JOINTS,
        cameras=tuple(mf.CameraSpec(c, spec.size, spec.size) for c in spec.cameras),
        control_rate_hz=30.0,
        normalization=mf.Normalization(mf.NormStats([0.0] * j, [1.0] * j),
                                       mf.NormStats([0.0] * j, [1.0] * j)),
        tokenizer=mf.TokenizerSpec('tokenizer.json', spec.instruction_tokens, spec.event_tokens),
        modes=modes, graphs=graphs,
        files=mf.hash_files(root, ['tokenizer.json', *files.values()]))
    mf.dump(manifest, root)
    return root
