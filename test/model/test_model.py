"""The network: the gradient-continuous path, loss on a fixed batch, sample targets."""

import dataclasses

import numpy as np
import pytest
import torch
from wallwm_train import keys
from wallwm_train.config import load_config
from wallwm_train.data.event import Event
from wallwm_train.model.wallwm import WallWM
from wallwm_train.optim import build_optimizers
from wallwm_train.samples import EpisodeStore
from wallwm_train.samples import SampleBuilder
from wallwm_train.samples import trim_text_padding


def _setup(cfg, episodes, modes):
    store = EpisodeStore.from_episodes(episodes, cfg.model, 30.0)
    builder = SampleBuilder(store, cfg.model, store.norm_stats())
    torch.manual_seed(0)
    model = WallWM(cfg.model, modes)
    model.caption.set_vocabulary(builder.caption_vocabulary()) if model.caption else None
    batch = builder.batch(list(range(8)), torch.Generator().manual_seed(0))
    return model, batch


def _nonzero(p):
    return p.grad is not None and p.grad.abs().sum() > 0


def test_event_action_loss_reaches_backbone_and_event_tokens(tiny, episodes):
    model, batch = _setup(tiny, episodes, ('event',))
    _, parts = model(batch, tiny.train)
    parts['event/action'].backward()
    assert _nonzero(model.backbone.layers[0].attn.q.weight)
    assert _nonzero(model.backbone.layers[-1].mlp.fc.weight)
    event_rows = model.text.token.weight.grad[batch[keys.EVENT_IDS][batch[keys.EVENT_MASK] > 0]]
    assert event_rows.abs().sum() > 0  # the event caption's token embeddings
    assert model.text.segment.grad[1].abs().sum() > 0  # the event segment embedding


def test_unified_action_loss_reaches_thoughts_and_backbone(tiny, episodes):
    model, batch = _setup(tiny, episodes, ('unified',))
    _, parts = model(batch, tiny.train)
    parts['unified/action'].backward()
    assert _nonzero(model.staircase.slots)  # the thoughts themselves
    assert _nonzero(model.staircase.entry.weight)
    top = model.backbone.layers[-1]
    assert _nonzero(top.attn.q.weight)  # thought queries only exist in staircase
    assert _nonzero(model.backbone.layers[0].attn.q.weight)


def test_event_goal_is_learned_from_the_cameras_and_the_caption(tiny, episodes):
    """The goal head's loss trains the caption-steered keypoints, and the action loss reads the
    goal token: the images reach event mode's memory a second time, through the caption."""
    model, batch = _setup(tiny, episodes, ('event',))
    _, parts = model(batch, tiny.train)
    parts['event/goal'].backward()
    goal = model.event_goal
    assert _nonzero(goal.keypoints.features[0].weight)
    assert _nonzero(goal.film.out.weight)  # the caption steers the heatmaps
    model.zero_grad()
    model(batch, tiny.train)[1]['event/action'].backward()
    assert _nonzero(goal.token.weight) and _nonzero(goal.keypoints.features[0].weight)
    other = dict(batch)
    other[keys.IMAGES] = batch[keys.IMAGES].flip(-1)
    with torch.no_grad():
        assert model(other, tiny.train)[1]['event/goal'] != parts['event/goal']


def test_chunk_baseline_has_no_event_path(tiny, episodes):
    model, batch = _setup(tiny, episodes, ('chunk',))
    assert model.staircase is None and model.caption is None and model.heads is None
    total, parts = model(batch, tiny.train)
    assert set(parts) == {'chunk/action'}
    other = dict(batch)
    other[keys.EVENT_IDS] = torch.randint(1000, 2000, batch[keys.EVENT_IDS].shape)
    assert model(other, tiny.train)[0].item() == total.item()  # events are not an input


def test_trimming_text_padding_leaves_every_loss_unchanged(episodes):
    """Training drops padding columns for speed; every objective must see the same batch."""
    cfg = load_config('tiny', ['model.instruction_tokens=24', 'model.event_tokens=16'])
    model, batch = _setup(cfg, episodes, cfg.train.modes)
    trimmed = trim_text_padding(batch)
    assert trimmed[keys.INSTRUCTION_IDS].shape[1] < batch[keys.INSTRUCTION_IDS].shape[1]
    assert trimmed[keys.EVENT_IDS].shape[1] < batch[keys.EVENT_IDS].shape[1]
    assert trimmed[keys.NEXT_EVENT_IDS].shape[1] < batch[keys.NEXT_EVENT_IDS].shape[1]
    assert trimmed[keys.INSTRUCTION_MASK][:, -1].any()  # nothing used was cut
    model.eval()
    with torch.no_grad():
        _, full = model(batch, cfg.train)
        _, short = model(trimmed, cfg.train)
    assert set(full) == set(short)
    for name in full:
        assert short[name].item() == pytest.approx(full[name].item(), rel=1e-5, abs=1e-6), name


def test_loss_goes_down_on_a_fixed_batch(tiny, episodes):
    model, batch = _setup(tiny, episodes, tiny.train.modes)
    opts = build_optimizers(model, tiny.train)
    losses = []
    for _ in range(60):
        total, _ = model(batch, tiny.train)
        for o in opts:
            o.zero_grad()
        total.backward()
        for o in opts:
            o.step()
        losses.append(total.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_segment_targets_follow_the_event(tiny, episodes):
    store = EpisodeStore.from_episodes(episodes, tiny.model, 30.0)
    builder = SampleBuilder(store, tiny.model, store.norm_stats())
    ref = store.events[1]
    t = ref.end - 3
    s = builder.sample(1, t)
    assert s[keys.SEGMENT_VALID].tolist()[:4] == [1, 1, 1, 0]
    assert s[keys.SEGMENT_BOUNDARY].tolist().index(1.0) == 2
    duration = ref.end - ref.start
    np.testing.assert_allclose(
        s[keys.SEGMENT_PROGRESS][:3], (np.arange(3) + t - ref.start + 1) / duration, rtol=1e-6
    )
    assert s[keys.SEGMENT_PROGRESS][2] == pytest.approx(1.0)
    assert s[keys.CHUNK_IN_EVENT].tolist() == [1, 1, 1, 0]
    assert builder.event_text.decode(s[keys.NEXT_EVENT_IDS]) == store.events[2].caption
    with pytest.raises(ValueError, match='outside event'):
        builder.sample(1, ref.end)
    # The thoughts see an earlier frame of the same event (as at run time: once per event).
    early = builder.sample(1, t, t_think=ref.start)
    np.testing.assert_array_equal(
        early[keys.THINK_IMAGES], builder.sample(1, ref.start)[keys.IMAGES]
    )
    with pytest.raises(ValueError, match='t_think'):
        builder.sample(1, t, t_think=t + 1)


def test_hold_tail_trains_the_rows_past_the_event_to_hold_and_report_it_ended(tiny, episodes):
    # With segment_tail 'hold', a segment that runs past a missed boundary has trained rows:
    # the event's last action, boundary 1 and progress 1, rather than masked ones.
    store = EpisodeStore.from_episodes(episodes, tiny.model, 30.0)
    builder = SampleBuilder(store, tiny.model, store.norm_stats(), segment_tail='hold')
    ref = store.events[1]
    t = ref.end - 3
    s = builder.sample(1, t)
    assert s[keys.SEGMENT_VALID].min() == 1.0
    actions = s[keys.SEGMENT_ACTIONS]
    np.testing.assert_array_equal(actions[2:], np.broadcast_to(actions[2], actions[2:].shape))
    assert s[keys.SEGMENT_BOUNDARY].tolist()[:4] == [0, 0, 1, 1]
    assert s[keys.SEGMENT_BOUNDARY][2:].min() == 1.0
    np.testing.assert_allclose(s[keys.SEGMENT_PROGRESS][2:], 1.0, rtol=1e-6)
    masked = SampleBuilder(store, tiny.model, store.norm_stats()).sample(1, t)
    np.testing.assert_array_equal(masked[keys.SEGMENT_ACTIONS], actions)
    with pytest.raises(ValueError, match='segment_tail'):
        load_config('tiny', ['train.segment_tail=repeat'])
    assert load_config('tiny', ['train.segment_tail=hold']).train.segment_tail == 'hold'


def test_an_event_the_expert_erred_on_purpose_trains_no_action_rows(tiny, episodes):
    # Noise injection: the perturbed reach's own actions are masked, the correction after it is
    # kept in the chunk (a demonstration of recovering from where the reach ended).
    erred = list(episodes)
    events = [
        Event(e.start, e.end, e.caption, imitate=i != 1) for i, e in enumerate(erred[0].events)
    ]
    erred[0] = dataclasses.replace(erred[0], events=events)
    store = EpisodeStore.from_episodes(erred, tiny.model, 30.0)
    ref = store.events[1]
    assert not ref.imitate and store.events[0].imitate
    builder = SampleBuilder(store, tiny.model, store.norm_stats())
    s = builder.sample(1, ref.end - 2)
    assert s[keys.SEGMENT_VALID].max() == 0.0
    assert s[keys.CHUNK_VALID].tolist() == [0, 0, 1, 1]
    assert s[keys.EVENT_IMITATE] == 0.0 and builder.sample(0, 0)[keys.EVENT_IMITATE] == 1.0
    clean_store = EpisodeStore.from_episodes(episodes, tiny.model, 30.0)
    clean = SampleBuilder(clean_store, tiny.model, store.norm_stats()).sample(1, ref.end - 2)
    assert clean[keys.SEGMENT_VALID][:2].tolist() == [1, 1]
    assert clean[keys.CHUNK_VALID].tolist() == [1, 1, 1, 1]


def test_an_erring_events_end_is_no_goal_or_future_target(tiny, episodes):
    # The noisy reach ends off its object: neither the event goal nor the future heads may learn
    # that "reach above the X" ends there. Demonstrated samples keep the plain mean.
    model, batch = _setup(tiny, episodes, ('event', 'unified'))
    _, plain = model(batch, tiny.train)
    erring = {k: v.clone() for k, v in batch.items()}
    erring[keys.EVENT_IMITATE][:2] = 0.0
    erring[keys.FUTURE_STATE][:2] += 100.0
    erring[keys.FUTURE][:2] += 100.0
    _, masked = model(erring, tiny.train)
    names = ['event/goal', 'event/future', 'event/future_state', 'unified/future',
             'unified/future_state']
    for name in names:
        assert masked[name] < 10 * plain[name] + 1.0, name  # the +100 targets are ignored
    _, unmasked = model({**erring, keys.EVENT_IMITATE: batch[keys.EVENT_IMITATE]}, tiny.train)
    assert all(unmasked[name] > 100 for name in names)


def test_instruction_word_swap_changes_only_instruction_words(tiny, episodes):
    store = EpisodeStore.from_episodes(episodes, tiny.model, 30.0)
    plain = SampleBuilder(store, tiny.model, store.norm_stats())
    swapping = SampleBuilder(store, tiny.model, store.norm_stats(), instruction_word_swap=0.5)
    indices = list(range(len(store.events))) * 4
    a = plain.batch(indices, torch.Generator().manual_seed(0))
    b = swapping.batch(indices, torch.Generator().manual_seed(0))
    for k in a:  # off by default: the same draws, so a preset's run is unchanged
        if k != keys.INSTRUCTION_IDS:
            torch.testing.assert_close(a[k], b[k])
    ids, swapped = a[keys.INSTRUCTION_IDS], b[keys.INSTRUCTION_IDS]
    changed = ids != swapped
    tokenizer = plain.instruction.tokenizer
    special = torch.tensor([tokenizer.token_to_id(t) for t in ('[CLS]', '[SEP]')])
    words = (a[keys.INSTRUCTION_MASK] > 0) & ~torch.isin(ids, special)
    assert not changed[~words].any()
    assert 0.3 < changed[words].float().mean() < 0.7
    with pytest.raises(ValueError, match='instruction_word_swap'):
        load_config('tiny', ['train.instruction_word_swap=1.0'])


def test_event_mode_without_the_instruction_learns_from_the_caption_alone(episodes):
    """model.event_reads_instruction false: no event objective depends on the instruction's
    wording; unified mode, which decodes the events from it, still does."""
    cfg = load_config('tiny', ['model.event_reads_instruction=false'])
    model, batch = _setup(cfg, episodes, cfg.train.modes)
    reworded = dict(batch)
    words = batch[keys.INSTRUCTION_MASK] > 0
    random_ids = torch.randint(1000, 2000, words.shape, generator=torch.Generator().manual_seed(1))
    reworded[keys.INSTRUCTION_IDS] = torch.where(words, random_ids, batch[keys.INSTRUCTION_IDS])
    model.eval()
    with torch.no_grad():
        _, plain = model(batch, cfg.train)
        _, other = model(reworded, cfg.train)
    event = [name for name in plain if name.startswith('event/')]
    assert len(event) >= 5
    for name in event:
        assert other[name].item() == plain[name].item(), name
    assert other['unified/caption'].item() != plain['unified/caption'].item()


def test_config_rejects_contradictions():
    with pytest.raises(ValueError, match='patch_size'):
        load_config('tiny', ['model.patch_size=12'])
    with pytest.raises(ValueError, match='staircase_layers'):
        load_config('tiny', ['model.staircase_layers=9'])
    with pytest.raises(ValueError, match='train.lr_adamw: expected a number'):
        load_config('tiny', ['train.lr_adamw=fast'])
    assert load_config('tiny', ['train.lr_adamw=1e-3']).train.lr_adamw == 1e-3  # YAML: a str
    with pytest.raises(ValueError, match='event_keypoints'):
        load_config('tiny', ['model.event_keypoints=-1'])
    with pytest.raises(ValueError, match="did you mean 'tiny'"):
        load_config('tinny')
    with pytest.raises(ValueError, match='unknown field'):
        load_config('tiny', ['model.widht=3'])


def test_keypoint_token_locates_an_object_within_a_patch():
    """A heatmap that responds to red puts its keypoint on a red 3-pixel square wherever it
    sits inside a 16-pixel patch: the precision patch tokens alone do not give."""
    from wallwm_train.model.vision import SpatialKeypoints

    keypoints = SpatialKeypoints(image_size=64, channels=4, keypoints=1, dim=8)
    with torch.no_grad():
        for conv in keypoints.features[::2]:
            conv.weight.zero_()
            conv.bias.zero_()
        first, second, last = keypoints.features[0], keypoints.features[2], keypoints.features[4]
        first.weight[0, 0] = 1.0 / 16  # mean red over the 4x4 window
        first.weight[0, 1:] = -1.0 / 16  # minus green and blue: a white table is not red
        second.weight[0, 0, 1, 1] = 1.0
        last.weight[0, 0] = 1.0
        keypoints.log_temperature.fill_(np.log(20.0))
    for x, y in [(5, 9), (20, 20), (33, 50), (60, 3)]:
        image = torch.full((1, 3, 64, 64), 0.6)  # grey table, in [-1, 1]
        image[0, :, y - 1 : y + 2, x - 1 : x + 2] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
        px, py = ((keypoints.points(image)[0, 0] + 1) / 2 * 63).tolist()
        assert abs(px - x) < 1.5 and abs(py - y) < 1.5, (x, y, px, py)


def test_untrained_standardised_keypoints_already_follow_an_object():
    """At initialisation a keypoint must move when the object moves, or the gradient that
    would teach it where objects are is ~1e-3 of what it should be and it never learns (raw
    heatmaps: 0.02 pixels here)."""
    from wallwm_train.model.vision import SpatialKeypoints

    torch.manual_seed(0)
    keypoints = SpatialKeypoints(image_size=64, channels=16, keypoints=16, dim=8, standardise=True)
    points = []
    for x in (10, 54):
        image = torch.full((1, 3, 64, 64), 0.2)
        image[0, :, 28:34, x - 3 : x + 3] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
        with torch.no_grad():
            points.append((keypoints.points(image)[0] + 1) / 2 * 63)  # (K, 2) pixels
    moved = (points[1] - points[0]).norm(dim=-1)
    assert moved.max() > 10.0, moved  # pixels, for an object that moved 44


def test_text_film_puts_the_keypoint_on_the_object_it_names():
    """Red and blue squares in one image: the words choose which one the heatmap follows, and
    padding tokens, whatever they hold, change nothing."""
    from wallwm_train.model.vision import SpatialKeypoints
    from wallwm_train.model.vision import TextFiLM

    keypoints = SpatialKeypoints(image_size=64, channels=2, keypoints=1, dim=8)
    film = TextFiLM(dim=2, channels=2)
    with torch.no_grad():
        for conv in keypoints.features[::2]:
            conv.weight.zero_()
            conv.bias.zero_()
        first, second, last = keypoints.features[0], keypoints.features[2], keypoints.features[4]
        first.weight[0] = torch.tensor([1.0, -1.0, -1.0])[:, None, None] / 16  # red
        first.weight[1] = torch.tensor([-1.0, -1.0, 1.0])[:, None, None] / 16  # blue
        second.weight[0, 0, 1, 1] = second.weight[1, 1, 1, 1] = 1.0
        last.weight[0, :] = 1.0  # the heatmap: whichever colour FiLM lets through
        keypoints.log_temperature.fill_(np.log(20.0))
        film.token[0].weight.copy_(torch.eye(2))
        film.token[0].bias.zero_()
        gelu_one = torch.nn.functional.gelu(torch.tensor(1.0))
        film.out.weight[0, 1] = film.out.weight[1, 0] = -1.0 / gelu_one  # a word gates the other
    image = torch.full((1, 3, 64, 64), 0.6)
    red_at, blue_at = (12, 40), (50, 20)
    for (x, y), colour in [(red_at, [1.0, -1.0, -1.0]), (blue_at, [-1.0, -1.0, 1.0])]:
        image[0, :, y - 1 : y + 2, x - 1 : x + 2] = torch.tensor(colour)[:, None, None]
    red_word, blue_word, junk = [1.0, 0.0], [0.0, 1.0], [5.0, -3.0]
    for words, target in [(red_word, red_at), (blue_word, blue_at)]:
        text = torch.tensor([[words, junk]])
        point = keypoints.points(image, film(text, torch.tensor([[1.0, 0.0]])))
        px, py = ((point[0, 0] + 1) / 2 * 63).tolist()
        assert abs(px - target[0]) < 1.5 and abs(py - target[1]) < 1.5, (target, px, py)
