"""Optimiser groups and schedule."""

import pytest
import torch

# torch's own iteration, taken at collection time: before any test builds optimisers, which on a
# CPU without fast bfloat16 swaps in the float32 one.
from torch.optim._muon import _zeropower_via_newtonschulz as torch_bfloat16
from wallwm_train.config import load_config
from wallwm_train.model.wallwm import WallWM
from wallwm_train.optim import ADAMW
from wallwm_train.optim import MUON
from wallwm_train.optim import build_optimizers
from wallwm_train.optim import lr_factor
from wallwm_train.optim import newton_schulz_float32
from wallwm_train.optim import param_groups


def test_every_parameter_in_exactly_one_group(tiny):
    model = WallWM(tiny.model, tiny.train.modes)
    groups = param_groups(model)
    muon = {n for n, _ in groups[MUON]}
    adamw = {n for n, _ in groups[ADAMW]}
    assert not muon & adamw
    assert muon | adamw == {n for n, _ in model.named_parameters()}
    assert all(p.ndim == 2 for _, p in groups[MUON])
    # Hidden matrices -> Muon.
    for name in (
        'backbone.layers.0.attn.q.weight',
        'backbone.layers.1.mlp.fc.weight',
        'expert.layers.0.cross_attn.k.weight',
        'caption.layers.0.mlp.proj.weight',
        'staircase.entry.weight',
    ):
        assert name in muon, name
    # Embeddings, input/output maps, convs, norms, biases -> AdamW.
    for name in (
        'text.token.weight',
        'text.up.weight',
        'text.position',
        'staircase.slots',
        'vision.stem.0.weight',
        'expert.action_in.weight',
        'expert.action_out.weight',
        'backbone.norm.weight',
        'backbone.layers.0.attn.q.bias',
        'proprio.net.0.weight',
    ):
        assert name in adamw, name


def test_optimizers_cover_the_groups(tiny):
    model = WallWM(tiny.model, tiny.train.modes)
    muon, adamw = build_optimizers(model, tiny.train)
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    n_muon = sum(len(g['params']) for g in muon.param_groups)
    n_adamw = sum(len(g['params']) for g in adamw.param_groups)
    assert n_muon + n_adamw == len(list(model.parameters()))
    only = build_optimizers(model, load_config('tiny', ['train.use_muon=false']).train)
    assert len(only) == 1 and isinstance(only[0], torch.optim.AdamW)


def test_event_goal_runs_at_its_own_rate_through_the_schedule(tiny):
    from wallwm_train.optim import set_lr

    cfg = load_config('tiny', ['train.lr_adamw=1e-3', 'train.lr_event_goal=5e-3']).train
    model = WallWM(tiny.model, tiny.train.modes)
    _, adamw = build_optimizers(model, cfg)
    goal = {id(p) for p in model.event_goal.parameters()}
    factor = set_lr([adamw], 50, cfg)
    for group in adamw.param_groups:
        mine = {id(p) for p in group['params']}
        assert not mine & goal or mine <= goal  # never mixed in one group
        expected = (5e-3 if mine <= goal else 1e-3) * factor
        assert group['lr'] == pytest.approx(expected)
    assert goal <= {id(p) for g in adamw.param_groups for p in g['params']}


def test_warmup_then_cosine():
    cfg = load_config(
        'tiny', ['train.steps=100', 'train.warmup_steps=10', 'train.min_lr_ratio=0.1']
    ).train
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.55)
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    values = [lr_factor(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize('shape', [(64, 256), (256, 64)])
def test_float32_newton_schulz_matches_torch_muon(shape):
    """The float32 iteration used where bfloat16 matmul is slow gives torch's Muon update (up to
    bfloat16 rounding), for wide and tall matrices alike."""
    grad = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    coefficients = (3.4445, -4.7750, 2.0315)
    ours = newton_schulz_float32(grad, coefficients, 5, 1e-7)
    reference = torch_bfloat16(grad, coefficients, 5, 1e-7).float()
    assert ours.shape == grad.shape and ours.dtype == grad.dtype
    assert (ours - reference).abs().max() < 0.05
    # Orthogonalised: singular values near 1 (the quintic leaves them in about 0.5-1.5).
    singular = torch.linalg.svdvals(ours)
    assert singular.min() > 0.3 and singular.max() < 1.6
