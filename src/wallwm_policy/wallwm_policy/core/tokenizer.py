"""Text <-> token ids with the bundle's own `tokenizers` file, at the manifest's fixed lengths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


class BundleTokenizer:
    """Encodes instructions and event texts to (1, L) int64 ids + mask; decodes captions."""

    def __init__(self, path: str | Path, pad_id: int = 0):
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises a plain Exception on bad JSON
            raise ValueError(f'{path}: not a valid tokenizers JSON file: {exc}') from None
        self.pad_id = pad_id

    def encode(self, text: str, length: int) -> tuple[np.ndarray, np.ndarray]:
        """`text` -> ids (1, length) int64, padded with pad_id or truncated; mask 0/1."""
        ids = self._tokenizer.encode(text).ids[:length]
        out = np.full((1, length), self.pad_id, dtype=np.int64)
        mask = np.zeros((1, length), dtype=np.int64)
        out[0, :len(ids)] = ids
        mask[0, :len(ids)] = 1
        return out, mask

    def decode(self, ids: np.ndarray) -> str:
        """(1, L) or (L,) ids -> text; pad and special tokens are dropped."""
        flat = [int(i) for i in np.asarray(ids).reshape(-1) if int(i) != self.pad_id]
        return self._tokenizer.decode(flat, skip_special_tokens=True).strip()
