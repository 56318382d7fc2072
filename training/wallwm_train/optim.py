"""Optimiser: Muon for the 2-D hidden weight matrices, AdamW for everything else.

"Hidden matrices" are the weights of the Linear layers inside transformer blocks (backbone,
caption decoder, action expert, heads) and the Staircase entry map: square-ish maps from hidden
to hidden, where Muon's orthogonalised update helps. Embeddings, input/output projections, convs,
norms and biases go to AdamW. `param_groups` is the one place this is decided; it asserts every
trainable parameter lands in exactly one group.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wallwm_train.config import TrainConfig
from wallwm_train.model.layers import Block
from wallwm_train.model.layers import CrossBlock

MUON = 'muon'
ADAMW = 'adamw'


def param_groups(model: nn.Module) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """{'muon': [(name, p)], 'adamw': [(name, p)]}, disjoint and covering every parameter."""
    hidden: set[int] = set()
    for module in model.modules():
        if isinstance(module, Block | CrossBlock):
            for sub in module.modules():
                if isinstance(sub, nn.Linear):
                    hidden.add(id(sub.weight))
    staircase = getattr(model, 'staircase', None)
    if staircase is not None:
        hidden.add(id(staircase.entry.weight))
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {MUON: [], ADAMW: []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        groups[MUON if id(p) in hidden and p.ndim == 2 else ADAMW].append((name, p))
    names = [n for g in groups.values() for n, _ in g]
    every = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(names) == sorted(every) and len(set(names)) == len(names), (
        'each trainable parameter must be in exactly one optimiser group'
    )
    return groups


def newton_schulz_float32(
    grad: torch.Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> torch.Tensor:
    """torch.optim.Muon's quintic Newton-Schulz orthogonalisation, in float32 instead of bfloat16.

    CPUs without native bfloat16 matrix multiply (AVX2-only x86, for one) emulate it about ten
    times slower than float32: on such a machine Muon's bfloat16 iteration took 1.6 s of a 1.9 s
    training step. Same iteration and coefficients; float32 only rounds less.
    """
    a, b, c = ns_coefficients
    x = grad.float()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x.T if tall else x).to(grad.dtype)


def _muon_in_float32_where_bfloat16_is_slow(model: nn.Module) -> None:
    on_cpu = all(p.device.type == 'cpu' for p in model.parameters())
    if on_cpu and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        torch.optim._muon._zeropower_via_newtonschulz = newton_schulz_float32


def build_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """[Muon, AdamW], or [AdamW] alone when `cfg.use_muon` is False (the benchmark baseline)."""
    groups = param_groups(model)
    if not cfg.use_muon:
        return [_adamw([named for g in groups.values() for named in g], cfg)]
    _muon_in_float32_where_bfloat16_is_slow(model)
    muon = torch.optim.Muon(
        [p for _, p in groups[MUON]],
        lr=cfg.lr_muon,
        weight_decay=cfg.weight_decay,
        adjust_lr_fn='original',
    )
    return [muon, _adamw(groups[ADAMW], cfg)]


def _adamw(named: list[tuple[str, nn.Parameter]], cfg: TrainConfig) -> torch.optim.AdamW:
    """No weight decay on vectors (norms, biases); decay matrices and embeddings. The event
    goal's module (model/event_goal.py) runs at its own rate: at the shared one it had not found
    the named object after 1500 steps (2.3 cm median on new layouts), at 3e-3 it had (0.9 cm).
    """
    groups = []
    for goal in (False, True):
        part = [p for name, p in named if name.startswith('event_goal.') == goal]
        scale = cfg.lr_event_goal / cfg.lr_adamw if goal else 1.0
        for decay in (True, False):
            params = [p for p in part if (p.ndim >= 2) == decay]
            if params:
                groups.append(
                    {
                        'params': params,
                        'weight_decay': cfg.weight_decay if decay else 0.0,
                        'lr_scale': scale,
                    }
                )
    return torch.optim.AdamW(groups, lr=cfg.lr_adamw, betas=(0.9, 0.95))


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to 1, then cosine down to `min_lr_ratio` at `cfg.steps`."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizers: list[torch.optim.Optimizer], step: int, cfg: TrainConfig) -> float:
    """Apply the schedule for `step` (stateless, so resume needs nothing extra); returns factor."""
    factor = lr_factor(step, cfg)
    for opt in optimizers:
        base = cfg.lr_muon if isinstance(opt, torch.optim.Muon) else cfg.lr_adamw
        for group in opt.param_groups:
            group['lr'] = base * factor * group.get('lr_scale', 1.0)
    return factor
