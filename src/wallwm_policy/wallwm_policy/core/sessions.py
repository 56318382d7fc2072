"""ONNX Runtime sessions: execution-provider choice (TensorRT -> CUDA -> CPU) and graph checks.

The provider list is what the user asks for, filtered by what this onnxruntime build offers and
what actually initialises (onnxruntime-gpu lists CUDA even where the CUDA libraries are missing,
then falls back with a page of errors; we probe quietly instead). The outcome is one sentence,
`ProviderChoice.reason`, for the node to log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from wallwm_policy.core.manifest import GraphSpec

TENSORRT = 'TensorrtExecutionProvider'
CUDA = 'CUDAExecutionProvider'
CPU = 'CPUExecutionProvider'
PROVIDER_ALIASES = {'tensorrt': TENSORRT, 'trt': TENSORRT, 'cuda': CUDA, 'cpu': CPU}
DEFAULT_PROVIDERS = ('tensorrt', 'cuda', 'cpu')

# onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
_QUIET = 3
_SILENT = 4

_ORT_DTYPES = {
    'tensor(float)': 'float32', 'tensor(float16)': 'float16', 'tensor(double)': 'float64',
    'tensor(int64)': 'int64', 'tensor(int32)': 'int32', 'tensor(uint8)': 'uint8',
    'tensor(bool)': 'bool',
}
NUMPY_DTYPES = {'float32': np.float32, 'float16': np.float16, 'float64': np.float64,
                'int64': np.int64, 'int32': np.int32, 'uint8': np.uint8, 'bool': np.bool_}


class SessionError(RuntimeError):
    """A graph file cannot be run or does not match its manifest entry; names the file."""


@dataclass(frozen=True)
class SessionConfig:
    """How graphs are run."""

    providers: tuple[str, ...] = DEFAULT_PROVIDERS  # preference order; CPU is the last resort
    intra_op_threads: int = 2    # threads per operator (0 = onnxruntime decides)
    inter_op_threads: int = 1    # graphs here are sequential chains; >1 rarely helps
    trt_cache_dir: str = ''      # TensorRT engine cache folder; empty = no cache
    # Idle intra-op threads busy-wait by default; on a small CPU that steals the control loop's
    # core between plans, so they sleep unless asked to spin.
    allow_spinning: bool = False

    def __post_init__(self):
        unknown = [p for p in self.providers if _canonical(p) is None]
        if unknown:
            raise ValueError(f'providers: unknown {unknown} (use {sorted(PROVIDER_ALIASES)})')
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError('intra_op_threads and inter_op_threads must be >= 0')


@dataclass(frozen=True)
class ProviderChoice:
    providers: tuple[str, ...]  # what the sessions use, best first
    reason: str                 # one line for the log


def _canonical(name: str) -> str | None:
    if name in (TENSORRT, CUDA, CPU):
        return name
    return PROVIDER_ALIASES.get(name.lower())


def _options(config: SessionConfig, severity: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = severity
    options.add_session_config_entry('session.intra_op.allow_spinning',
                                     '1' if config.allow_spinning else '0')
    return options


def _provider_entries(providers: Sequence[str], config: SessionConfig) -> list:
    entries = []
    for name in providers:
        if name == TENSORRT and config.trt_cache_dir:
            entries.append((name, {'trt_engine_cache_enable': True,
                                   'trt_engine_cache_path': config.trt_cache_dir}))
        else:
            entries.append(name)
    return entries


def choose_providers(config: SessionConfig, probe_model: str | Path) -> ProviderChoice:
    """Resolve the preference list against this build and this machine (probing GPUs quietly)."""
    ort.set_default_logger_severity(_QUIET)
    requested = []
    for name in config.providers:
        canonical = _canonical(name)
        if canonical not in requested:
            requested.append(canonical)
    available = set(ort.get_available_providers())
    missing = [p for p in requested if p not in available]
    usable = [p for p in requested if p in available and p != CPU]
    failed = []
    if usable:
        # A GPU provider that cannot initialise makes onnxruntime fall back; see which survive.
        try:
            probe = ort.InferenceSession(str(probe_model), _options(config, _SILENT),
                                         providers=_provider_entries(usable + [CPU], config))
            working = [p for p in probe.get_providers() if p != CPU]
        except Exception:  # noqa: BLE001 -- any provider failure means: not usable here
            working = []
        failed = [p for p in usable if p not in working]
        usable = [p for p in usable if p in working]
    chosen = tuple(usable + [CPU])
    parts = [f'using {chosen[0]}']
    if missing:
        parts.append(f'{", ".join(missing)} not in this onnxruntime build')
    if failed:
        parts.append(f'{", ".join(failed)} failed to initialise on this machine')
    if CPU not in requested:
        parts.append('CPU added as the last resort')
    parts.append(f'requested {", ".join(requested)}; threads intra={config.intra_op_threads}')
    return ProviderChoice(providers=chosen, reason='; '.join(parts))


class GraphSession:
    """One ONNX graph, checked against its manifest entry, run by input name."""

    def __init__(self, name: str, path: Path, spec: GraphSpec, config: SessionConfig,
                 choice: ProviderChoice):
        self.name = name
        self.spec = spec
        try:
            self._session = ort.InferenceSession(
                str(path), _options(config, _QUIET),
                providers=_provider_entries(choice.providers, config))
        except Exception as exc:  # noqa: BLE001 -- onnxruntime raises several unrelated types
            raise SessionError(f'{path}: onnxruntime cannot load graph {name!r}: {exc}') from None
        self._check(path)
        self.input_names = tuple(t.name for t in spec.inputs)
        self.output_names = tuple(t.name for t in spec.outputs)

    def _check(self, path: Path) -> None:
        for kind, declared, actual in (('input', self.spec.inputs, self._session.get_inputs()),
                                       ('output', self.spec.outputs, self._session.get_outputs())):
            by_name = {a.name: a for a in actual}
            if kind == 'input' and set(by_name) != {t.name for t in declared}:
                raise SessionError(
                    f"{path}: graph inputs {sorted(by_name)} differ from the manifest's "
                    f'{sorted(t.name for t in declared)}')
            for tensor in declared:
                got = by_name.get(tensor.name)
                if got is None:
                    raise SessionError(f'{path}: graph has no {kind} {tensor.name!r} '
                                       f'(it has {sorted(by_name)})')
                dtype = _ORT_DTYPES.get(got.type, got.type)
                shape = tuple(d if isinstance(d, int) else None for d in got.shape)
                fits = len(shape) == len(tensor.shape) and all(
                    a is None or b is None or a == b for a, b in zip(shape, tensor.shape,
                                                                      strict=True))
                if dtype != tensor.dtype or not fits:
                    raise SessionError(
                        f'{path}: {kind} {tensor.name!r} is {dtype}{list(shape)} in the graph '
                        f'but {tensor.dtype}{list(tensor.shape)} in the manifest')

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    def run(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feed this graph's inputs from `tensors`; return its outputs by name."""
        feeds = {name: tensors[name] for name in self.input_names}
        outputs = self._session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outputs, strict=True))
