"""Checkpoints: safetensors only (weights, optimiser state, RNG), JSON for everything else.

A checkpoint is a folder `step_XXXXXXXX/` with `model.safetensors`, `optimizer.safetensors` and
`state.json` (config, normalisation, caption vocabulary is a model buffer, sampler state, step).
It is written into a temporary folder and renamed into place, and `latest` (a one-line text file)
is replaced atomically after it: a kill at any moment leaves the previous checkpoint intact.
Nothing is ever unpickled, so a checkpoint from elsewhere cannot run code on load.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

LATEST = 'latest'
MODEL_FILE = 'model.safetensors'
OPTIMIZER_FILE = 'optimizer.safetensors'
STATE_FILE = 'state.json'


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not fit the model being trained."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def _optimizer_tensors(
    optimizers: list[torch.optim.Optimizer],
) -> tuple[dict[str, torch.Tensor], list[Any]]:
    tensors: dict[str, torch.Tensor] = {}
    groups = []
    for i, opt in enumerate(optimizers):
        sd = opt.state_dict()
        for pid, state in sd['state'].items():
            for key, value in state.items():
                t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                tensors[f'{i}/{pid}/{key}'] = t.detach().cpu().contiguous()
        groups.append(sd['param_groups'])
    return tensors, groups


def save(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizers: list[torch.optim.Optimizer],
    state: dict[str, Any],
    generator_states: list[torch.Tensor],
) -> Path:
    """Write checkpoint `step` atomically and point `latest` at it. `generator_states`: the
    batch generator's state of every rank (each rank draws its own stream)."""
    ckpt_root = Path(run_dir) / 'checkpoints'
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f'step_{step:08d}'
    tmp = ckpt_root / f'.tmp_step_{step:08d}_{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / MODEL_FILE))
    opt_tensors, groups = _optimizer_tensors(optimizers)
    for rank, gen_state in enumerate(generator_states):
        opt_tensors[f'rng/generator/{rank}'] = gen_state
    save_file(opt_tensors, str(tmp / OPTIMIZER_FILE))
    full = dict(state, step=step, optimizer_groups=groups)
    (tmp / STATE_FILE).write_text(json.dumps(_jsonable(full), indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = ckpt_root / f'.{LATEST}.tmp'
    pointer.write_text(final.name + '\n')
    os.replace(pointer, ckpt_root / LATEST)
    return final


def resolve(path: Path) -> Path:
    """A checkpoint folder, or a run folder / checkpoints folder -> its latest checkpoint."""
    path = Path(path)
    for root in (path, path / 'checkpoints'):
        pointer = root / LATEST
        if pointer.is_file():
            path = root / pointer.read_text().strip()
            break
    missing = [f for f in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(
            f'{path}: not a wallwm checkpoint (missing {missing}); pass a '
            'step_XXXXXXXX folder or a run folder with checkpoints/latest'
        )
    return path


def read_state(path: Path) -> dict[str, Any]:
    path = resolve(path)
    try:
        return json.loads((path / STATE_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f'{path / STATE_FILE}: corrupt ({exc})') from None


def load_model(path: Path, model: torch.nn.Module) -> None:
    """Load weights strictly; a shape or name mismatch names the first offending tensors."""
    path = resolve(path)
    weights = load_file(str(path / MODEL_FILE))
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shapes = [
        f'{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}'
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    if missing or extra or shapes:
        raise CheckpointError(
            f'{path}: does not match this model config (missing {missing[:5]}, unexpected '
            f'{extra[:5]}, shape mismatches {shapes[:5]}); resume with the config it was '
            'trained with'
        )
    model.load_state_dict(weights)


def load_training(
    path: Path, optimizers: list[torch.optim.Optimizer], generator: torch.Generator, rank: int = 0
) -> dict[str, Any]:
    """Restore optimiser state and RNG; returns the JSON state (step, sampler, ...)."""
    path = resolve(path)
    state = read_state(path)
    tensors = load_file(str(path / OPTIMIZER_FILE))
    groups = state['optimizer_groups']
    if len(groups) != len(optimizers):
        raise CheckpointError(
            f'{path}: {len(groups)} optimiser(s) saved, {len(optimizers)} now (use_muon changed?)'
        )
    for i, opt in enumerate(optimizers):
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            head, _, rest = key.partition('/')
            if head != str(i) or key.startswith('rng/'):
                continue
            pid, _, name = rest.partition('/')
            per_param.setdefault(int(pid), {})[name] = value
        try:
            opt.load_state_dict({'state': per_param, 'param_groups': groups[i]})
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f'{path}: optimiser {i} does not match: {exc}') from None
    key = f'rng/generator/{rank}'
    if key not in tensors:
        raise CheckpointError(
            f'{path}: no generator state for rank {rank} (saved with fewer '
            'ranks?); resume with the same world size'
        )
    generator.set_state(tensors[key])
    return state
