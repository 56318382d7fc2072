"""Event-grounded sample construction.

A sample is drawn from an *event* (an index into `dataset.events`, picked by the cluster-balanced
sampler); the time step t inside the event comes from our own seeded generator. From
(observation at t, instruction, caption of the event containing t) we build every mode's targets:

- event mode: the actions from t to the end of the event (<= event_action_steps, padded, masked),
  a boundary target at the event's last step, progress (step - start + 1) / duration;
  an event with `imitate=False` (the expert erred on purpose) has every row of it masked;
- unified and chunk modes: a fixed chunk of chunk_steps actions from t (masked past the episode's
  end), with the same boundary/progress targets where the chunk is inside the event;
- the end-of-event frame at future_size and joint state (the future-observation targets) and the
  next event's
  caption.

Episodes are decoded once into memory at the model's image size (uint8, area-resized exactly
as `wallwm_policy.core.preprocess` resizes live frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from wallwm_train import keys
from wallwm_train.config import ModelConfig
from wallwm_train.tokenizer import TextEncoder

EVENT_LEVEL = 'event'
MIN_STD = 1e-3  # joints that never move (in a small dataset) must not blow up normalisation


@dataclass(frozen=True)
class EventRef:
    """One event of one episode (indices into the store)."""

    episode: int
    start: int
    end: int  # exclusive
    caption: str
    next_caption: str
    imitate: bool = True  # False: a deliberate error of the expert, kept out of the action rows


@dataclass
class StoredEpisode:
    task: str
    state: np.ndarray  # (T, J) float32, raw
    action: np.ndarray  # (T, J) float32, raw
    images: np.ndarray  # (T, N_cam, H, W, 3) uint8 at the model's size


@dataclass(frozen=True)
class NormStats:
    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {
            k: [float(v) for v in getattr(self, k)]
            for k in ('state_mean', 'state_std', 'action_mean', 'action_std')
        }

    @classmethod
    def from_dict(cls, d) -> NormStats:
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in d.items()})


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8, cv2 INTER_AREA when shrinking."""
    if frames.shape[1:3] == (size, size):
        return frames
    shrinking = frames.shape[1] >= size and frames.shape[2] >= size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


class EpisodeStore:
    """Decoded episodes + their events, in the order of `dataset.events`."""

    def __init__(
        self,
        episodes: list[StoredEpisode],
        events: list[EventRef],
        joint_names: Sequence[str],
        camera_names: Sequence[str],
        fps: float,
    ):
        self.episodes = episodes
        self.events = events
        self.joint_names = tuple(joint_names)
        self.camera_names = tuple(camera_names)
        self.fps = float(fps)

    @classmethod
    def from_episodes(
        cls,
        episodes: Sequence,
        cfg: ModelConfig,
        fps: float,
        camera_names: Sequence[str] | None = None,
        joint_names: Sequence[str] | None = None,
        event_order: Sequence[tuple[int, object]] | None = None,
    ) -> EpisodeStore:
        """`episodes`: objects with .task .state .action .images {cam: (T,H,W,3)} .events
        (as `LeRobotDataset.episode(i)` returns). `store.events[i]` follows `event_order`
        ((episode_index, Event) pairs: `LeRobotDataset.events`, which the sampler indexes), or
        episode by episode in time order."""
        stored, refs = [], []
        for index, ep in enumerate(episodes):
            missing = [c for c in cfg.cameras if c not in ep.images]
            if missing:
                raise ValueError(
                    f'episode {index}: no camera(s) {missing} (has '
                    f'{sorted(ep.images)}); the model config wants {cfg.cameras}'
                )
            images = np.stack(
                [resize_frames(np.asarray(ep.images[c]), cfg.image_size) for c in cfg.cameras],
                axis=1,
            )  # (T, N, H, W, 3)
            stored.append(
                StoredEpisode(
                    str(ep.task),
                    np.asarray(ep.state, np.float32),
                    np.asarray(ep.action, np.float32),
                    images,
                )
            )
        if event_order is None:
            event_order = [
                (i, e) for i, ep in enumerate(episodes) for e in sorted(ep.events, key=_time)
            ]
        for index, event in event_order:
            if not 0 <= index < len(episodes):
                raise ValueError(f'event {event} names episode {index}; there are {len(episodes)}')
            refs.append(_event_ref(index, event, episodes[index].events, len(stored[index].state)))
        if not refs:
            raise ValueError('the dataset has no events; every episode needs at least one')
        return cls(stored, refs, joint_names or cfg.joint_names, camera_names or cfg.cameras, fps)

    @classmethod
    def from_dataset(cls, dataset, cfg: ModelConfig) -> EpisodeStore:
        """From a `wallwm_train.data.lerobot.LeRobotDataset`; checks joints and cameras."""
        if tuple(dataset.joint_names) != cfg.joint_names:
            raise ValueError(
                f'dataset joints {list(dataset.joint_names)} != model joints '
                f'{list(cfg.joint_names)}'
            )
        episodes = [dataset.episode(i) for i in range(dataset.num_episodes)]
        return cls.from_episodes(episodes, cfg, dataset.fps, event_order=dataset.events)

    def norm_stats(self) -> NormStats:
        state = np.concatenate([e.state for e in self.episodes])
        action = np.concatenate([e.action for e in self.episodes])
        return NormStats(
            state.mean(0),
            np.maximum(state.std(0), MIN_STD),
            action.mean(0),
            np.maximum(action.std(0), MIN_STD),
        )


def _time(event) -> tuple[int, int]:
    return event.start, event.end


def _event_ref(episode: int, e, siblings: Sequence, length: int) -> EventRef:
    """The event with its next caption: the first event of level 'event' (any level if the
    episode has none) starting at or after its end."""
    if not 0 <= e.start < e.end <= length:
        raise ValueError(
            f'episode {episode}: event [{e.start}, {e.end}) outside the episode (length {length})'
        )
    ordered = sorted(siblings, key=_time)
    chain = [n for n in ordered if getattr(n, 'level', EVENT_LEVEL) == EVENT_LEVEL] or ordered
    nxt = next((n.caption for n in chain if n.start >= e.end), '')
    imitate = bool(getattr(e, 'imitate', True))
    return EventRef(episode, int(e.start), int(e.end), str(e.caption), nxt, imitate)


class SampleBuilder:
    """EventRef + t -> one sample (numpy); `batch` stacks them into torch tensors."""

    def __init__(
        self,
        store: EpisodeStore,
        cfg: ModelConfig,
        norm: NormStats,
        segment_tail: str = 'mask',
        instruction_word_swap: float = 0.0,
    ):
        self.store = store
        self.cfg = cfg
        self.norm = norm
        self.segment_tail = segment_tail  # TrainConfig.segment_tail
        self.instruction_word_swap = instruction_word_swap  # TrainConfig.instruction_word_swap
        self.instruction = TextEncoder(cfg.instruction_tokens)
        self.event_text = TextEncoder(cfg.event_tokens)

    def sample(
        self, event_index: int, t: int, t_think: int | None = None
    ) -> dict[str, np.ndarray]:
        """The sample at step t of an event; `t_think` (start <= t_think <= t, default t) is the
        step whose observation the Staircase thoughts see: the runtime computes them once when
        the event begins and re-uses them, so training shows them an earlier frame."""
        ref = self.store.events[event_index]
        ep = self.store.episodes[ref.episode]
        cfg = self.cfg
        n = len(ep.state)
        if not ref.start <= t < ref.end:
            raise ValueError(f't={t} outside event [{ref.start}, {ref.end})')
        action = (ep.action - self.norm.action_mean) / self.norm.action_std  # (T, J)
        out: dict[str, np.ndarray] = {}
        t_think = t if t_think is None else t_think
        if not ref.start <= t_think <= t:
            raise ValueError(f't_think={t_think} outside [{ref.start}, t={t}]')
        out[keys.IMAGES] = ep.images[t].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out[keys.THINK_IMAGES] = (
            ep.images[t_think].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        )
        out[keys.THINK_STATE] = (
            (ep.state[t_think] - self.norm.state_mean) / self.norm.state_std
        ).astype(np.float32)
        out[keys.STATE] = ((ep.state[t] - self.norm.state_mean) / self.norm.state_std).astype(
            np.float32
        )
        out[keys.INSTRUCTION_IDS], out[keys.INSTRUCTION_MASK] = self.instruction(ep.task)
        if not cfg.event_reads_instruction:
            blank = self.instruction('')
            out[keys.BLANK_INSTRUCTION_IDS], out[keys.BLANK_INSTRUCTION_MASK] = blank
        out[keys.EVENT_IDS], out[keys.EVENT_MASK] = self.event_text(ref.caption)
        out[keys.NEXT_EVENT_IDS] = self.event_text(ref.next_caption)[0]
        end_frame = ep.images[min(ref.end, n - 1)]  # (N, H, W, 3)
        f = cfg.future_size
        pooled = (
            end_frame.reshape(
                len(cfg.cameras), f, cfg.image_size // f, f, cfg.image_size // f, 3
            ).mean((2, 4))
            / 255.0
        )
        out[keys.FUTURE] = pooled.transpose(0, 3, 1, 2).astype(np.float32)  # (N, 3, f, f)
        out[keys.FUTURE_STATE] = (
            (ep.state[min(ref.end, n - 1)] - self.norm.state_mean) / self.norm.state_std
        ).astype(np.float32)
        out[keys.EVENT_IMITATE] = np.float32(ref.imitate)
        duration = ref.end - ref.start
        # Event segment: t .. end-1, at most event_action_steps; the rows past the end repeat the
        # last action and are masked ('mask') or trained as a hold that has ended ('hold').
        steps = np.arange(cfg.event_action_steps) + t
        hold = self.segment_tail == 'hold'
        valid = np.ones(len(steps), bool) if hold else steps < ref.end
        if not ref.imitate:  # the expert's deliberate error: learn nothing from its actions
            valid = np.zeros(len(steps), bool)
        out[keys.SEGMENT_ACTIONS] = action[np.minimum(steps, ref.end - 1)].astype(np.float32)
        out[keys.SEGMENT_VALID] = valid.astype(np.float32)
        ended = steps >= ref.end - 1 if hold else steps == ref.end - 1
        out[keys.SEGMENT_BOUNDARY] = ended.astype(np.float32)
        out[keys.SEGMENT_PROGRESS] = np.where(
            valid, np.minimum(steps - ref.start + 1, duration) / duration, 0.0
        ).astype(np.float32)
        # Fixed chunk: t .. t+chunk_steps-1, masked past the episode.
        steps = np.arange(cfg.chunk_steps) + t
        in_episode = steps < n
        in_event = steps < ref.end
        out[keys.CHUNK_ACTIONS] = action[np.minimum(steps, n - 1)].astype(np.float32)
        # The rows after the erring event are the expert correcting: those are demonstrations.
        out[keys.CHUNK_VALID] = (in_episode & (ref.imitate | ~in_event)).astype(np.float32)
        out[keys.CHUNK_BOUNDARY] = (steps == ref.end - 1).astype(np.float32)
        out[keys.CHUNK_IN_EVENT] = in_event.astype(np.float32)
        out[keys.CHUNK_PROGRESS] = np.where(
            in_event, (steps - ref.start + 1) / duration, 0.0
        ).astype(np.float32)
        return out

    def batch(
        self, event_indices: Sequence[int], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Pick t uniformly inside each event and t_think uniformly in [start, t], draw flow noise
        and times; all from `generator`."""
        samples = []
        for index in event_indices:
            ref = self.store.events[index]
            t = ref.start + int(torch.randint(ref.end - ref.start, (1,), generator=generator))
            t_think = ref.start + int(torch.randint(t - ref.start + 1, (1,), generator=generator))
            samples.append(self.sample(index, t, t_think))
        batch = {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}
        b, j = len(samples), self.cfg.num_joints
        batch[keys.SEGMENT_NOISE] = torch.randn(
            b, self.cfg.event_action_steps, j, generator=generator
        )
        batch[keys.CHUNK_NOISE] = torch.randn(b, self.cfg.chunk_steps, j, generator=generator)
        batch[keys.FLOW_T] = torch.rand(b, generator=generator)
        if self.instruction_word_swap > 0:
            self._swap_instruction_words(batch, generator)
        return batch

    def _swap_instruction_words(self, batch, generator: torch.Generator) -> None:
        """Replace instruction word pieces by random vocabulary ones (not [CLS]/[SEP]/padding), so
        the model cannot lean on the exact wording of the few training paraphrases."""
        tokenizer = self.instruction.tokenizer
        ids, mask = batch[keys.INSTRUCTION_IDS], batch[keys.INSTRUCTION_MASK]
        words = (mask > 0) & (ids != tokenizer.token_to_id('[CLS]'))
        words &= ids != tokenizer.token_to_id('[SEP]')
        swap = words & (torch.rand(ids.shape, generator=generator) < self.instruction_word_swap)
        # '!' is the first piece after [PAD], [unusedN] and the other specials in MiniLM's vocab.
        first, end = tokenizer.token_to_id('!'), tokenizer.get_vocab_size()
        random_ids = torch.randint(first, end, ids.shape, generator=generator)
        batch[keys.INSTRUCTION_IDS] = torch.where(swap, random_ids.to(ids.dtype), ids)

    def caption_vocabulary(self) -> torch.Tensor:
        """Token ids of every event caption, most frequent first (ties by id): the caption
        decoder's output vocabulary."""
        counts: dict[int, int] = {}
        for ref in self.store.events:
            for text in (ref.caption, ref.next_caption):
                ids, mask = self.event_text(text)
                for i in ids[mask > 0]:
                    counts[int(i)] = counts.get(int(i), 0) + 1
        return torch.tensor(sorted(counts, key=lambda i: (-counts[i], i)), dtype=torch.long)


def trim_text_padding(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the trailing text columns that are padding in every sample of the batch.

    The sim's instructions use at most 15 of 24 instruction tokens, and the prefix is most of a
    step's compute. Padding is masked wherever it is read (attention keys, the caption loss's
    ignore index), so the losses are unchanged; the exported graphs keep the full fixed length.
    """
    out = dict(batch)
    for ids, mask in (
        (keys.INSTRUCTION_IDS, keys.INSTRUCTION_MASK),
        (keys.BLANK_INSTRUCTION_IDS, keys.BLANK_INSTRUCTION_MASK),
        (keys.EVENT_IDS, keys.EVENT_MASK),
        (keys.NEXT_EVENT_IDS, None),
    ):
        if ids not in batch:
            continue
        used = (batch[ids] != 0) if mask is None else batch[mask] > 0
        length = int(used.any(0).nonzero().max()) + 1 if used.any() else 1
        out[ids] = batch[ids][:, :length]
        if mask is not None:
            out[mask] = batch[mask][:, :length]
    return out


class RandomEventSampler:
    """Uniform event draws for in-memory episode lists (tests, `fit_in_memory`): the same
    iterator/state_dict protocol as `wallwm_train.data.sampler.ClusterBalancedSampler`, which
    is what `wallwm-train` uses on a LeRobot dataset. Infinite; rank r of w draws its own
    stream (seeded by seed and rank)."""

    def __init__(self, num_events: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.num_events = num_events
        self.rng = np.random.default_rng([seed, rank, world_size])

    def __iter__(self):
        while True:
            yield int(self.rng.integers(self.num_events))

    def state_dict(self) -> dict:
        return {'bit_generator': self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state['bit_generator']
