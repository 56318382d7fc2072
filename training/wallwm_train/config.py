"""Training configuration: frozen dataclasses, named presets loaded from configs/<name>.yaml.

A preset YAML has two sections, `model` and `train`, whose keys are the fields below; anything not
given keeps its default. `load_config('tiny')` or `load_config('path/to/file.yaml')`; overrides as
`section.field=value` strings (`train.steps=200`). `__post_init__` rejects contradictions, naming
both values.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent / 'configs'

MODE_EVENT = 'event'  # event-grounded: condition on the event caption, variable-length segment
MODE_UNIFIED = 'unified'  # decode the event as Staircase thoughts, fixed-length chunks from them
MODE_CHUNK = 'chunk'  # baseline: fixed chunks from observation + instruction only
MODES = (MODE_EVENT, MODE_UNIFIED, MODE_CHUNK)
SEGMENT_TAILS = ('mask', 'hold')  # TrainConfig.segment_tail

SO101_JOINTS = (
    'shoulder_pan',
    'shoulder_lift',
    'elbow_flex',
    'wrist_flex',
    'wrist_roll',
    'gripper',
)


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes. Every width/depth/size is here so one class covers tiny to real sizes."""

    joint_names: tuple[str, ...] = SO101_JOINTS
    cameras: tuple[str, ...] = ('front', 'wrist')
    image_size: int = 64  # model input (square); the runtime resizes camera frames to it
    patch_size: int = 16  # image tokens per camera = (image_size / patch_size) ** 2
    stem_channels: int = 32  # width of the first conv of the patch stem
    keypoints: int = 0  # spatial-softmax keypoints per camera, one extra token (0: none)
    # event mode: keypoints per camera steered by the event caption, a head predicting the
    # event's end joint state from them, one more event token (0: none; model/event_goal.py)
    event_keypoints: int = 0
    # event mode's prefix reads the instruction (True) or none, acting on the observation and
    # the event caption alone: the caption names what to do, and unseen instruction wordings
    # cannot derail it (training/README.md, "Event mode without the instruction"). Unified and
    # chunk always read it.
    event_reads_instruction: bool = True
    dim: int = 128  # backbone width
    heads: int = 4
    depth: int = 4  # backbone layers L
    mlp_ratio: float = 4.0
    vocab_size: int = 30522  # WordPiece vocabulary of all-MiniLM-L6-v2 (tokenizer.py)
    text_rank: int = 24  # width of the factorised text table (V x rank, then rank x dim)
    caption_vocab: int = 512  # caption decoder's output vocabulary (most frequent tokens)
    instruction_tokens: int = 24
    event_tokens: int = 16
    num_thoughts: int = 4  # Staircase thought slots K
    staircase_layers: int = 2  # top backbone layers the thoughts climb (L_s <= depth)
    decoder_depth: int = 1  # caption decoder layers
    expert_dim: int = 128  # flow-matching action expert width
    expert_depth: int = 2
    expert_heads: int = 4
    event_action_steps: int = 64  # max segment length in event mode (padded, masked)
    chunk_steps: int = 16  # fixed chunk length in unified and chunk modes
    flow_steps: int = 10  # Euler steps of the flow-matching sampler
    future_size: int = 8  # future-observation target: end-of-event frame at this size
    init_text_from_minilm: bool = True  # text table from a PCA of MiniLM's word embeddings

    def __post_init__(self):
        object.__setattr__(self, 'joint_names', tuple(self.joint_names))
        object.__setattr__(self, 'cameras', tuple(self.cameras))
        if self.image_size % self.patch_size:
            raise ValueError(
                f'image_size {self.image_size} is not a multiple of patch_size {self.patch_size}'
            )
        if self.patch_size % 4:
            raise ValueError(f'patch_size {self.patch_size} must be a multiple of 4 (stem stride)')
        if self.dim % self.heads or self.expert_dim % self.expert_heads:
            raise ValueError(
                f'dim {self.dim} / heads {self.heads} and expert_dim '
                f'{self.expert_dim} / expert_heads {self.expert_heads} must divide'
            )
        if not 1 <= self.staircase_layers <= self.depth:
            raise ValueError(
                f'staircase_layers {self.staircase_layers} must be in 1..depth ({self.depth})'
            )
        if self.image_size % self.future_size:
            raise ValueError(
                f'image_size {self.image_size} is not a multiple of future_size {self.future_size}'
            )
        if self.keypoints < 0:
            raise ValueError(f'keypoints must be >= 0, got {self.keypoints}')
        if self.event_keypoints < 0:
            raise ValueError(f'event_keypoints must be >= 0, got {self.event_keypoints}')
        if not self.cameras or not self.joint_names:
            raise ValueError('at least one camera and one joint are required')
        if not 5 <= self.caption_vocab <= self.vocab_size:
            raise ValueError(f'caption_vocab {self.caption_vocab} must be in 5..vocab_size')
        if self.event_tokens < 3:
            raise ValueError(f'event_tokens {self.event_tokens} must be >= 3 ([CLS] word [SEP])')

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def image_tokens(self) -> int:
        per_camera = (self.image_size // self.patch_size) ** 2 + (1 if self.keypoints else 0)
        return len(self.cameras) * per_camera

    @property
    def prefix_tokens(self) -> int:
        """Images + one proprio token + instruction."""
        return self.image_tokens + 1 + self.instruction_tokens

    def action_steps(self, mode: str) -> int:
        return self.event_action_steps if mode == MODE_EVENT else self.chunk_steps


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and run settings."""

    modes: tuple[str, ...] = (MODE_EVENT,)  # objectives trained jointly; the bundle offers them
    steps: int = 3000
    batch_size: int = 32  # per rank
    lr_adamw: float = 1e-3
    lr_muon: float = 0.02
    lr_event_goal: float = 3e-3  # AdamW rate of model/event_goal.py (optim._adamw says why)
    weight_decay: float = 0.01
    use_muon: bool = True  # False: AdamW for every parameter (the benchmark's baseline)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of the peak
    grad_clip: float = 1.0
    seed: int = 0
    sampler_alpha: float = 0.5  # cluster temperature of ClusterBalancedSampler
    num_clusters: int = 8
    caption_embedding: str = 'minilm'  # sampler clustering: 'minilm' or 'tfidf'
    log_every: int = 10
    checkpoint_every: int = 500
    caption_weight: float = 0.5
    boundary_weight: float = 0.5
    progress_weight: float = 0.5
    future_weight: float = 0.5
    future_state_weight: float = 1.0
    event_goal_weight: float = 1.0  # with model.event_keypoints: end-of-event joint state
    # Event-segment rows past the event's end: 'mask' leaves them untrained; 'hold' trains them to
    # hold the event's last action, with boundary 1 ('ended by this row') and progress 1, so a
    # segment that runs past a missed boundary holds still instead of playing untrained rows.
    segment_tail: str = 'mask'
    # Probability that each instruction word piece is replaced by a random one in training: the
    # sim has four paraphrases per family, and unseen wordings otherwise derail event mode.
    instruction_word_swap: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, 'modes', tuple(self.modes))
        bad = [m for m in self.modes if m not in MODES]
        if not self.modes or bad or len(set(self.modes)) != len(self.modes):
            raise ValueError(
                f'modes {list(self.modes)}: expected distinct values from {list(MODES)}'
            )
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f'steps {self.steps} and batch_size {self.batch_size} must be >= 1')
        if self.caption_embedding not in ('minilm', 'tfidf'):
            raise ValueError(
                f"caption_embedding {self.caption_embedding!r}: expected 'minilm' or 'tfidf'"
            )
        if not 0.0 <= self.instruction_word_swap < 1.0:
            raise ValueError(
                f'instruction_word_swap {self.instruction_word_swap} must be in [0, 1)'
            )
        if self.segment_tail not in SEGMENT_TAILS:
            raise ValueError(
                f'segment_tail {self.segment_tail!r}: expected one of {list(SEGMENT_TAILS)}'
            )
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f'warmup_steps {self.warmup_steps} must be >= 0 and min_lr_ratio '
                f'{self.min_lr_ratio} in [0, 1]'
            )


@dataclass(frozen=True)
class Config:
    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return cls(
            name=str(data.get('name', 'custom')),
            model=_build(ModelConfig, data.get('model', {}), 'model'),
            train=_build(TrainConfig, data.get('train', {}), 'train'),
        )


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset by name (configs/<name>.yaml) or a YAML file path, plus `a.b=value` overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f'{name_or_path}.yaml'
        if not path.is_file():
            close = difflib.get_close_matches(name_or_path, preset_names(), n=1)
            hint = f' (did you mean {close[0]!r}?)' if close else ''
            raise ValueError(
                f'unknown config preset {name_or_path!r}{hint}; presets: {preset_names()}'
            )
    if not path.is_file():
        raise ValueError(f'config file {path} not found')
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping with model/train sections')
    data.setdefault('name', path.stem)
    for item in overrides:
        key, sep, value = item.partition('=')
        section, dot, name = key.partition('.')
        if not sep or not dot or section not in ('model', 'train'):
            raise ValueError(
                f'override {item!r}: expected model.<field>=<value> or train.<field>=<value>'
            )
        data.setdefault(section, {})[name] = yaml.safe_load(value)
    return Config.from_dict(data)


def _build(cls, values: dict[str, Any], section: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        hints = [difflib.get_close_matches(u, known, n=1) for u in unknown]
        raise ValueError(
            f'{section}: unknown field(s) {unknown}; did you mean '
            f'{[h[0] if h else None for h in hints]}?'
        )
    values = dict(values)
    for f in dataclasses.fields(cls):
        # YAML 1.1 reads 1e-3 (no dot) as a string; a float field takes it, and ints, as floats.
        value = values.get(f.name)
        numeric = isinstance(value, int | str) and not isinstance(value, bool)
        if isinstance(f.default, float) and numeric:
            try:
                values[f.name] = float(value)
            except ValueError:
                raise ValueError(f'{section}.{f.name}: expected a number, got {value!r}') from None
    return cls(**values)
