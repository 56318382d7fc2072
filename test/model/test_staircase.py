"""Staircase Decoding: the staggered schedule, its cost, and that training computes the same
thoughts as the literal wavefront."""

import torch
from wallwm_train.config import load_config
from wallwm_train.model.staircase import staircase_schedule
from wallwm_train.model.wallwm import WallWM
from wallwm_train.tolerances import STAIRCASE_WAVEFRONT_ATOL


def _model(overrides=()):
    cfg = load_config('tiny', list(overrides))
    torch.manual_seed(0)
    return WallWM(cfg.model, ('unified',)).eval(), cfg


def _prefix(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = model.cfg
    images = torch.rand(batch, len(c.cameras), 3, c.image_size, c.image_size, generator=g)
    ids = torch.randint(1000, 2000, (batch, c.instruction_tokens), generator=g)
    mask = torch.ones(batch, c.instruction_tokens, dtype=torch.long)
    mask[0, 3:] = 0
    cache, _, valid = model.encode_observation(
        images, torch.randn(batch, c.num_joints, generator=g), ids, mask
    )
    return cache, valid


def test_schedule_puts_thought_k_at_layer_s_minus_k():
    for k_count, layers in [(1, 1), (3, 2), (4, 6), (5, 3)]:
        schedule = staircase_schedule(k_count, layers)
        assert len(schedule) == layers + k_count - 1
        seen = set()
        for s, step in enumerate(schedule):
            for k, j in step:
                assert j == s - k
                seen.add((k, j))
        assert seen == {(k, j) for k in range(k_count) for j in range(layers)}
    assert staircase_schedule(3, 2)[1] == [(0, 1), (1, 0)]


def test_thoughts_cost_l_plus_k_minus_1_layer_applications():
    model, cfg = _model(['model.depth=4', 'model.staircase_layers=3', 'model.num_thoughts=4'])
    cache, valid = _prefix(model)
    calls = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o, n=n: calls.append(n))
        for n, layer in enumerate(model.backbone.layers)
    ]
    model.think(cache, valid)
    for h in hooks:
        h.remove()
    k, ls, first = 4, 3, 1
    assert len(calls) == ls + k - 1 == 6  # not K * L_s = 12
    assert calls == [first] * k + list(range(first + 1, first + ls))  # entry K times, then once
    _, steps = model.staircase.run_wavefront(model.backbone, cache, valid)
    assert steps == ls + k - 1


def test_layer_major_forward_equals_the_wavefront_schedule():
    model, _ = _model(['model.depth=3', 'model.staircase_layers=2', 'model.num_thoughts=4'])
    cache, valid = _prefix(model)
    with torch.no_grad():
        fast = model.think(cache, valid)
        literal, _ = model.staircase.run_wavefront(model.backbone, cache, valid)
    assert fast.shape == (2, 4, model.cfg.dim)
    assert (fast - literal).abs().max() < STAIRCASE_WAVEFRONT_ATOL


def test_thought_k_does_not_see_later_thoughts():
    model, _ = _model(['model.num_thoughts=3'])
    cache, valid = _prefix(model)
    with torch.no_grad():
        before = model.think(cache, valid)
        # change only the last slot; random, since LayerNorm erases a constant shift
        slot = model.staircase.slots[2]
        slot.add_(torch.randn(slot.shape, generator=torch.Generator().manual_seed(0)))
        after = model.think(cache, valid)
    assert torch.allclose(before[:, :2], after[:, :2])
    assert not torch.allclose(before[:, 2], after[:, 2])


def test_bottom_layers_below_the_staircase_are_not_run_for_thoughts():
    model, _ = _model(['model.depth=3', 'model.staircase_layers=1'])
    cache, valid = _prefix(model)
    calls = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o, n=n: calls.append(n))
        for n, layer in enumerate(model.backbone.layers)
    ]
    model.think(cache, valid)
    for h in hooks:
        h.remove()
    assert set(calls) == {2}
