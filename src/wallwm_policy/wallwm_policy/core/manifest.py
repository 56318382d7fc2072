"""The model-bundle manifest (docs/contracts.md): schema, validation, JSON load/dump, sha256.

This is the one place the bundle format is defined. The exporter (`wallwm_train.export`) builds a
`Manifest` and calls `dump`; the runtime calls `load` and `verify_files`. Kept free of numpy so
the exporter and tools can import it anywhere.

Validation is strict and names the offending field (and file, in `load`): a bundle that loads is
one the runtime can run - every graph a mode lists exists, every graph input is provided by the
runtime or by an earlier graph, and the tensors the runtime reads come out with the right shapes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 'wallwm-bundle'
# Bumped on any change an older runtime cannot read; the runtime accepts versions <= this one.
FORMAT_VERSION = 1
MANIFEST_FILE = 'manifest.json'

MODE_EVENT = 'event'
MODE_UNIFIED = 'unified'
MODE_CHUNK = 'chunk'
MODES = (MODE_EVENT, MODE_UNIFIED, MODE_CHUNK)

# Tensors the runtime provides to the graphs.
IMAGES = 'images'                      # float32 (1, N_cam, 3, H, W), RGB in [0, 1]
STATE = 'state'                        # float32 (1, J), normalised
INSTRUCTION_IDS = 'instruction_ids'    # int64 (1, instruction_tokens)
INSTRUCTION_MASK = 'instruction_mask'  # int64 (1, instruction_tokens)
EVENT_IDS = 'event_ids'                # int64 (1, event_tokens)
EVENT_MASK = 'event_mask'              # int64 (1, event_tokens)
NOISE = 'noise'                        # float32 (1, action_steps, J), standard normal
# Tensors the runtime reads.
ACTIONS = 'actions'                    # float32 (1, action_steps, J), normalised
BOUNDARY_LOGITS = 'boundary_logits'    # float32 (1, action_steps)
PROGRESS = 'progress'                  # float32 (1, action_steps), in [0, 1]
CAPTION_IDS = 'caption_ids'            # int64 (1, event_tokens), unified per_event only

DTYPES = ('float32', 'float16', 'float64', 'int64', 'int32', 'uint8', 'bool')
CREATED_BY_REQUIRED = ('wallwm_train', 'torch', 'onnx_opset', 'config', 'seed')

_SHA256_RE = re.compile(r'^[0-9a-f]{64}$')


class ManifestError(ValueError):
    """A manifest (or a bundle file it lists) is invalid; the message names the field or file."""


# --------------------------------------------------------------------------------------------
# Schema


@dataclass(frozen=True)
class CameraSpec:
    """One camera the model sees, at the size the model takes (the runtime resizes to it)."""

    name: str
    height: int  # pixels
    width: int   # pixels


@dataclass(frozen=True)
class NormStats:
    """Per-joint mean and std: normalised = (x - mean) / std."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        object.__setattr__(self, 'mean', tuple(float(v) for v in self.mean))
        object.__setattr__(self, 'std', tuple(float(v) for v in self.std))


@dataclass(frozen=True)
class Normalization:
    state: NormStats
    action: NormStats


@dataclass(frozen=True)
class TokenizerSpec:
    """A `tokenizers` JSON file and the padded lengths of the token inputs."""

    file: str
    instruction_tokens: int
    event_tokens: int
    pad_id: int = 0


@dataclass(frozen=True)
class ModeSpec:
    """Graphs run once per event (outputs cached) and once per control decision, in order."""

    per_event: tuple[str, ...]
    per_step: tuple[str, ...]
    action_steps: int  # rows of `actions`: segment length (event) or chunk length (unified, chunk)
    # False: the runtime hands this mode's graphs the empty instruction (event mode only; the
    # model then acts on the observation and the event text alone).
    reads_instruction: bool = True

    def __post_init__(self):
        object.__setattr__(self, 'per_event', tuple(self.per_event))
        object.__setattr__(self, 'per_step', tuple(self.per_step))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | None, ...]  # None: a dynamic dimension

    def __post_init__(self):
        object.__setattr__(self, 'shape', tuple(self.shape))


@dataclass(frozen=True)
class GraphSpec:
    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def __post_init__(self):
        object.__setattr__(self, 'inputs', tuple(self.inputs))
        object.__setattr__(self, 'outputs', tuple(self.outputs))

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)


@dataclass(frozen=True)
class Manifest:
    """A model bundle's manifest. Construction validates it (raises `ManifestError`)."""

    bundle_id: str
    created_by: Mapping[str, Any]  # wallwm_train, torch, onnx_opset, config, seed (+ any extras)
    joint_names: tuple[str, ...]
    cameras: tuple[CameraSpec, ...]
    control_rate_hz: float
    normalization: Normalization
    tokenizer: TokenizerSpec
    modes: Mapping[str, ModeSpec]
    graphs: Mapping[str, GraphSpec]
    files: Mapping[str, str]  # file name -> sha256 hex of its bytes
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        object.__setattr__(self, 'cameras', tuple(self.cameras))
        object.__setattr__(self, 'created_by', dict(self.created_by))
        object.__setattr__(self, 'modes', dict(self.modes))
        object.__setattr__(self, 'graphs', dict(self.graphs))
        object.__setattr__(self, 'files', dict(self.files))
        _validate(self)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) shared by all cameras (the `images` tensor stacks them)."""
        return self.cameras[0].height, self.cameras[0].width

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict in the contract's key order."""
        raw = dataclasses.asdict(self)
        order = ('format', 'format_version', 'bundle_id', 'created_by', 'joint_names', 'cameras',
                 'control_rate_hz', 'normalization', 'tokenizer', 'modes', 'graphs', 'files')
        return _lists({key: raw[key] for key in order})

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Parse a decoded manifest.json; errors name the field (e.g. `modes.event.per_step`)."""
        return _parse_manifest(data)


# --------------------------------------------------------------------------------------------
# Public functions


def load(path: str | Path) -> Manifest:
    """Read and validate a manifest: `path` is the bundle folder or its manifest.json."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        raise ManifestError(f'{path}: manifest not found') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f'{path}: cannot read manifest: {exc}') from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f'{path}: not valid JSON: {exc}') from None
    try:
        return Manifest.from_dict(data)
    except ManifestError as exc:
        raise ManifestError(f'{path}: {exc}') from None


def dumps(manifest: Manifest) -> str:
    """The manifest as JSON text (stable key order, 2-space indent, trailing newline)."""
    return json.dumps(manifest.to_dict(), indent=2) + '\n'


def dump(manifest: Manifest, path: str | Path) -> Path:
    """Write the manifest: `path` is the bundle folder or the manifest file. Returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    path.write_text(dumps(manifest), encoding='utf-8')
    return path


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (ONNX files can be large)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        while block := stream.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def hash_files(folder: str | Path, names: Sequence[str]) -> dict[str, str]:
    """`{name: sha256}` for files in `folder`: what an exporter puts in `Manifest.files`."""
    folder = Path(folder)
    return {name: sha256_file(folder / name) for name in sorted(names)}


def verify_files(manifest: Manifest, folder: str | Path) -> None:
    """Check every listed file exists in `folder` with its recorded sha256; else name the file."""
    folder = Path(folder)
    for name, expected in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            raise ManifestError(f'{path}: listed in the manifest but missing from the bundle')
        actual = sha256_file(path)
        if actual != expected:
            raise ManifestError(
                f'{path}: sha256 mismatch (manifest {expected[:12]}..., file {actual[:12]}...): '
                'the file is corrupt or from another export')


# --------------------------------------------------------------------------------------------
# Parsing: JSON -> dataclasses, with the field path in every error


def _parse_manifest(data: Any) -> Manifest:
    top = _mapping(data, '<root>')
    known = {'format', 'format_version', 'bundle_id', 'created_by', 'joint_names', 'cameras',
             'control_rate_hz', 'normalization', 'tokenizer', 'modes', 'graphs', 'files'}
    _no_unknown(top, known, '<root>')
    fmt = _string(_key(top, 'format', ''), 'format')
    if fmt != FORMAT:
        raise ManifestError(f'format: expected {FORMAT!r}, got {fmt!r} (not a wallwm bundle)')
    version = _integer(_key(top, 'format_version', ''), 'format_version')
    _check_version(version)
    norm = _mapping(_key(top, 'normalization', ''), 'normalization')
    tok = _mapping(_key(top, 'tokenizer', ''), 'tokenizer')
    _no_unknown(tok, {'file', 'instruction_tokens', 'event_tokens', 'pad_id'}, 'tokenizer')
    return Manifest(
        format=fmt,
        format_version=version,
        bundle_id=_string(_key(top, 'bundle_id', ''), 'bundle_id'),
        created_by=_mapping(_key(top, 'created_by', ''), 'created_by'),
        joint_names=_strings(_key(top, 'joint_names', ''), 'joint_names'),
        cameras=tuple(_parse_camera(c, f'cameras[{i}]')
                      for i, c in enumerate(_sequence(_key(top, 'cameras', ''), 'cameras'))),
        control_rate_hz=_number(_key(top, 'control_rate_hz', ''), 'control_rate_hz'),
        normalization=Normalization(
            state=_parse_stats(_key(norm, 'state', 'normalization.'), 'normalization.state'),
            action=_parse_stats(_key(norm, 'action', 'normalization.'), 'normalization.action')),
        tokenizer=TokenizerSpec(
            file=_string(_key(tok, 'file', 'tokenizer.'), 'tokenizer.file'),
            instruction_tokens=_integer(_key(tok, 'instruction_tokens', 'tokenizer.'),
                                        'tokenizer.instruction_tokens'),
            event_tokens=_integer(_key(tok, 'event_tokens', 'tokenizer.'),
                                  'tokenizer.event_tokens'),
            pad_id=_integer(tok.get('pad_id', 0), 'tokenizer.pad_id')),
        modes={name: _parse_mode(spec, f'modes.{name}')
               for name, spec in _mapping(_key(top, 'modes', ''), 'modes').items()},
        graphs={name: _parse_graph(spec, f'graphs.{name}')
                for name, spec in _mapping(_key(top, 'graphs', ''), 'graphs').items()},
        files={name: _string(digest, f'files.{name}')
               for name, digest in _mapping(_key(top, 'files', ''), 'files').items()},
    )


def _parse_camera(data: Any, where: str) -> CameraSpec:
    cam = _mapping(data, where)
    _no_unknown(cam, {'name', 'height', 'width'}, where)
    return CameraSpec(name=_string(_key(cam, 'name', where + '.'), where + '.name'),
                      height=_integer(_key(cam, 'height', where + '.'), where + '.height'),
                      width=_integer(_key(cam, 'width', where + '.'), where + '.width'))


def _parse_stats(data: Any, where: str) -> NormStats:
    stats = _mapping(data, where)
    _no_unknown(stats, {'mean', 'std'}, where)
    return NormStats(mean=_numbers(_key(stats, 'mean', where + '.'), where + '.mean'),
                     std=_numbers(_key(stats, 'std', where + '.'), where + '.std'))


def _parse_mode(data: Any, where: str) -> ModeSpec:
    mode = _mapping(data, where)
    _no_unknown(mode, {'per_event', 'per_step', 'action_steps', 'reads_instruction'}, where)
    return ModeSpec(per_event=_strings(mode.get('per_event', []), where + '.per_event'),
                    per_step=_strings(_key(mode, 'per_step', where + '.'), where + '.per_step'),
                    action_steps=_integer(_key(mode, 'action_steps', where + '.'),
                                          where + '.action_steps'),
                    reads_instruction=_boolean(mode.get('reads_instruction', True),
                                               where + '.reads_instruction'))


def _parse_graph(data: Any, where: str) -> GraphSpec:
    graph = _mapping(data, where)
    _no_unknown(graph, {'file', 'inputs', 'outputs'}, where)
    return GraphSpec(
        file=_string(_key(graph, 'file', where + '.'), where + '.file'),
        inputs=tuple(_parse_tensor(t, f'{where}.inputs[{i}]') for i, t in
                     enumerate(_sequence(_key(graph, 'inputs', where + '.'), where + '.inputs'))),
        outputs=tuple(_parse_tensor(t, f'{where}.outputs[{i}]') for i, t in
                      enumerate(_sequence(_key(graph, 'outputs', where + '.'),
                                          where + '.outputs'))))


def _parse_tensor(data: Any, where: str) -> TensorSpec:
    tensor = _mapping(data, where)
    _no_unknown(tensor, {'name', 'dtype', 'shape'}, where)
    shape = []
    for i, dim in enumerate(_sequence(_key(tensor, 'shape', where + '.'), where + '.shape')):
        shape.append(None if dim is None else _integer(dim, f'{where}.shape[{i}]'))
    return TensorSpec(name=_string(_key(tensor, 'name', where + '.'), where + '.name'),
                      dtype=_string(_key(tensor, 'dtype', where + '.'), where + '.dtype'),
                      shape=tuple(shape))


def _key(data: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in data:
        raise ManifestError(f'{prefix}{key}: missing')
    return data[key]


def _no_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ManifestError(
            f'{where}: unknown key(s) {unknown} (expected some of {sorted(known)})')


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(f'{where}: expected an object, got {type(value).__name__}')
    return dict(value)


def _sequence(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ManifestError(f'{where}: expected a list, got {type(value).__name__}')
    return list(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f'{where}: expected a string, got {type(value).__name__}')
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_string(v, f'{where}[{i}]') for i, v in enumerate(_sequence(value, where)))


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f'{where}: expected an integer, got {value!r}')
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(f'{where}: expected true or false, got {value!r}')
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f'{where}: expected a number, got {value!r}')
    return float(value)


def _numbers(value: Any, where: str) -> tuple[float, ...]:
    return tuple(_number(v, f'{where}[{i}]') for i, v in enumerate(_sequence(value, where)))


def _lists(value: Any) -> Any:
    """Tuples -> lists, recursively, so json output is plain."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Validation of a constructed manifest (cross-field rules)


def _check_version(version: int) -> None:
    if version < 1:
        raise ManifestError(f'format_version: must be >= 1, got {version}')
    if version > FORMAT_VERSION:
        raise ManifestError(
            f'format_version: bundle is format {version}, this runtime reads up to '
            f'{FORMAT_VERSION}; upgrade wallwm_policy or re-export with an older wallwm_train')


def _validate(m: Manifest) -> None:
    if m.format != FORMAT:
        raise ManifestError(f'format: expected {FORMAT!r}, got {m.format!r}')
    _check_version(m.format_version)
    if not m.bundle_id.strip():
        raise ManifestError('bundle_id: must not be empty')
    missing = [k for k in CREATED_BY_REQUIRED if k not in m.created_by]
    if missing:
        raise ManifestError(f'created_by: missing {missing}')
    _validate_joints_cameras(m)
    num_joints = len(m.joint_names)
    for part in ('state', 'action'):
        stats: NormStats = getattr(m.normalization, part)
        for attr in ('mean', 'std'):
            values = getattr(stats, attr)
            where = f'normalization.{part}.{attr}'
            if len(values) != num_joints:
                raise ManifestError(
                    f'{where}: expected {num_joints} values (one per joint), got {len(values)}')
            if not all(math.isfinite(v) for v in values):
                raise ManifestError(f'{where}: values must be finite')
        if not all(s > 0 for s in stats.std):
            raise ManifestError(f'normalization.{part}.std: values must be > 0')
    if not (math.isfinite(m.control_rate_hz) and m.control_rate_hz > 0):
        raise ManifestError(f'control_rate_hz: must be > 0, got {m.control_rate_hz}')
    tok = m.tokenizer
    if tok.instruction_tokens < 1 or tok.event_tokens < 1:
        raise ManifestError('tokenizer: instruction_tokens and event_tokens must be >= 1')
    if tok.pad_id < 0:
        raise ManifestError(f'tokenizer.pad_id: must be >= 0, got {tok.pad_id}')
    _validate_files(m)
    for name, graph in m.graphs.items():
        _validate_graph(name, graph, m)
    if not m.modes:
        raise ManifestError(f'modes: a bundle offers at least one of {list(MODES)}')
    for name, mode in m.modes.items():
        _validate_mode(name, mode, m)


def _validate_joints_cameras(m: Manifest) -> None:
    if not m.joint_names:
        raise ManifestError('joint_names: must not be empty')
    if len(set(m.joint_names)) != len(m.joint_names):
        raise ManifestError(f'joint_names: duplicates in {list(m.joint_names)}')
    if not m.cameras:
        raise ManifestError('cameras: at least one camera is required')
    names = [c.name for c in m.cameras]
    if len(set(names)) != len(names):
        raise ManifestError(f'cameras: duplicate names in {names}')
    for i, cam in enumerate(m.cameras):
        if not cam.name:
            raise ManifestError(f'cameras[{i}].name: must not be empty')
        if cam.height < 1 or cam.width < 1:
            raise ManifestError(f'cameras[{i}]: height and width must be >= 1')
        if (cam.height, cam.width) != (m.cameras[0].height, m.cameras[0].width):
            raise ManifestError(
                f'cameras[{i}]: all cameras share one size (the images tensor stacks them); '
                f'{cam.name} is {cam.height}x{cam.width}, {m.cameras[0].name} is '
                f'{m.cameras[0].height}x{m.cameras[0].width}')


def _validate_files(m: Manifest) -> None:
    for name, digest in m.files.items():
        if not _is_plain_name(name):
            raise ManifestError(f'files: {name!r} must be a plain file name inside the bundle')
        if not _SHA256_RE.match(digest):
            raise ManifestError(f'files.{name}: expected a lowercase hex sha256, got {digest!r}')
    needed = {m.tokenizer.file: 'tokenizer.file'}
    needed.update({g.file: f'graphs.{n}.file' for n, g in m.graphs.items()})
    for file_name, where in needed.items():
        if not _is_plain_name(file_name):
            raise ManifestError(f'{where}: {file_name!r} must be a plain file name in the bundle')
        if file_name not in m.files:
            raise ManifestError(f'{where}: {file_name!r} has no sha256 entry in files')


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in ('.', '..') and '/' not in name and '\\' not in name


def _validate_graph(name: str, graph: GraphSpec, m: Manifest) -> None:
    where = f'graphs.{name}'
    for kind in ('inputs', 'outputs'):
        tensors = getattr(graph, kind)
        seen = set()
        for i, tensor in enumerate(tensors):
            t_where = f'{where}.{kind}[{i}]'
            if not tensor.name:
                raise ManifestError(f'{t_where}.name: must not be empty')
            if tensor.name in seen:
                raise ManifestError(f'{t_where}: duplicate tensor name {tensor.name!r}')
            seen.add(tensor.name)
            if tensor.dtype not in DTYPES:
                raise ManifestError(f'{t_where}.dtype: {tensor.dtype!r} not one of {list(DTYPES)}')
            if any(d is not None and d < 1 for d in tensor.shape):
                raise ManifestError(f'{t_where}.shape: dimensions must be >= 1 or null')
    if not graph.outputs:
        raise ManifestError(f'{where}.outputs: a graph must produce something')


def runtime_inputs(m: Manifest, action_steps: int) -> dict[str, TensorSpec]:
    """The tensors the runtime provides to a mode's graphs, with their exact dtypes and shapes."""
    height, width = m.image_size
    j = len(m.joint_names)
    n_instr, n_event = m.tokenizer.instruction_tokens, m.tokenizer.event_tokens
    specs = [
        TensorSpec(IMAGES, 'float32', (1, len(m.cameras), 3, height, width)),
        TensorSpec(STATE, 'float32', (1, j)),
        TensorSpec(INSTRUCTION_IDS, 'int64', (1, n_instr)),
        TensorSpec(INSTRUCTION_MASK, 'int64', (1, n_instr)),
        TensorSpec(EVENT_IDS, 'int64', (1, n_event)),
        TensorSpec(EVENT_MASK, 'int64', (1, n_event)),
        TensorSpec(NOISE, 'float32', (1, action_steps, j)),
    ]
    return {s.name: s for s in specs}


def runtime_outputs(m: Manifest, mode: str, action_steps: int) -> dict[str, TensorSpec]:
    """The tensors the runtime reads after a mode's per_step (and per_event) graphs."""
    j = len(m.joint_names)
    specs = [TensorSpec(ACTIONS, 'float32', (1, action_steps, j))]
    if mode in (MODE_EVENT, MODE_UNIFIED):
        specs += [TensorSpec(BOUNDARY_LOGITS, 'float32', (1, action_steps)),
                  TensorSpec(PROGRESS, 'float32', (1, action_steps))]
    return {s.name: s for s in specs}


def _shapes_match(declared: tuple[int | None, ...], expected: tuple[int | None, ...]) -> bool:
    return len(declared) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(declared, expected, strict=True))


def _validate_mode(name: str, mode: ModeSpec, m: Manifest) -> None:
    where = f'modes.{name}'
    if name not in MODES:
        raise ManifestError(f'{where}: unknown mode (known: {list(MODES)})')
    if mode.action_steps < 1:
        raise ManifestError(f'{where}.action_steps: must be >= 1, got {mode.action_steps}')
    if not mode.per_step:
        raise ManifestError(f'{where}.per_step: must list at least one graph')
    if not mode.reads_instruction and name != MODE_EVENT:
        raise ManifestError(f'{where}.reads_instruction: only event mode can act without the '
                            f'instruction ({name} mode works from it)')
    available = dict(runtime_inputs(m, mode.action_steps))
    for stage in ('per_event', 'per_step'):
        for i, graph_name in enumerate(getattr(mode, stage)):
            g_where = f'{where}.{stage}[{i}]'
            graph = m.graphs.get(graph_name)
            if graph is None:
                raise ManifestError(
                    f'{g_where}: unknown graph {graph_name!r} (graphs: {sorted(m.graphs)})')
            for tensor in graph.inputs:
                source = available.get(tensor.name)
                if source is None:
                    raise ManifestError(
                        f'{g_where}: graph {graph_name!r} input {tensor.name!r} is neither a '
                        f'runtime input nor an output of an earlier graph in this mode')
                if source.dtype != tensor.dtype or not _shapes_match(tensor.shape, source.shape):
                    raise ManifestError(
                        f'{g_where}: graph {graph_name!r} input {tensor.name!r} is declared '
                        f'{tensor.dtype}{list(tensor.shape)} but gets '
                        f'{source.dtype}{list(source.shape)}')
            for tensor in graph.outputs:
                available[tensor.name] = tensor
        if stage == 'per_event' and name == MODE_UNIFIED:
            caption = available.get(CAPTION_IDS)
            expected = (1, m.tokenizer.event_tokens)
            if caption is None or caption.dtype != 'int64' or not _shapes_match(
                    caption.shape, expected):
                raise ManifestError(
                    f'{where}.per_event: unified mode needs {CAPTION_IDS!r} int64{list(expected)} '
                    'from its per_event graphs (the decoded caption)')
    for out_name, spec in runtime_outputs(m, name, mode.action_steps).items():
        got = available.get(out_name)
        if got is None:
            raise ManifestError(
                f'{where}: no graph produces {out_name!r}, which the runtime reads')
        if got.dtype != spec.dtype or not _shapes_match(got.shape, spec.shape):
            raise ManifestError(
                f'{where}: {out_name!r} is {got.dtype}{list(got.shape)}, the runtime reads '
                f'{spec.dtype}{list(spec.shape)}')

