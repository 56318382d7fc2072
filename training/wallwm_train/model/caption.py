"""Caption decoder: a small causal LM that turns a memory (thoughts or event states) into text.

Unified mode: the memory is the Staircase thoughts and the target is the caption of the event
they encode (the text anchor; the argmax decoding is the caption the node reports). Event mode:
the memory is the backbone's event states and the target is the caption of the next event.
Input and output embeddings are tied to the text embedding table, restricted to a caption
vocabulary (`caption_vocab` ids, set from the training captions by `set_vocabulary`, saved with
the weights): a softmax over the full 30k WordPiece table would cost more than the rest of a
training step on CPU, and captions use a few hundred distinct tokens. Tokens are handled as
indices into that vocabulary (`to_vocab` maps full ids, unknown -> [UNK]), so the exported
staircase graph carries only its (Vc, D) rows, not the 30k-row table.
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.layers import CrossBlock
from wallwm_train.model.layers import causal_bias
from wallwm_train.model.layers import key_bias
from wallwm_train.model.text import TextEmbedding

PAD_ID = 0
UNK_ID = 100  # [UNK]
CLS_ID = 101  # [CLS]: begin of text in the MiniLM WordPiece vocabulary
SEP_ID = 102  # [SEP]: end of text


class CaptionDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.length = cfg.event_tokens
        self.position = nn.Parameter(torch.randn(cfg.event_tokens, cfg.dim) * 0.02)
        self.layers = nn.ModuleList(
            CrossBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dim)
            for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)
        specials = torch.tensor([PAD_ID, UNK_ID, CLS_ID, SEP_ID])
        vocab = torch.cat([specials, torch.full((cfg.caption_vocab - 4,), UNK_ID)])
        self.register_buffer('vocab_ids', vocab)  # (Vc,) full ids
        self.register_buffer('to_vocab', torch.full((cfg.vocab_size,), 1, dtype=torch.long))
        self.set_vocabulary(specials)

    @torch.no_grad()
    def set_vocabulary(self, token_ids: torch.Tensor) -> None:
        """Caption tokens, most frequent first; beyond `caption_vocab` they decode as [UNK]."""
        ids = [PAD_ID, UNK_ID, CLS_ID, SEP_ID]
        ids += [int(i) for i in token_ids if int(i) not in ids]
        ids = ids[: len(self.vocab_ids)]
        self.vocab_ids.fill_(UNK_ID)
        self.vocab_ids[: len(ids)] = torch.tensor(ids)
        self.to_vocab.fill_(1)  # index of [UNK]
        self.to_vocab[torch.tensor(ids)] = torch.arange(len(ids))

    def logits(
        self,
        text: TextEmbedding,
        sub_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> torch.Tensor:
        """sub_ids (B, T) indices into the caption vocabulary -> logits (B, T, Vc) of the next
        token at each position."""
        t = sub_ids.shape[1]
        table = text.rows(self.vocab_ids)  # (Vc, D)
        x = table[sub_ids] + self.position[None, :t]
        self_bias = causal_bias(t, sub_ids.device)
        mem_bias = key_bias(memory_valid)
        for layer in self.layers:
            x = layer(x, self_bias, memory, mem_bias)
        return self.norm(x) @ table.T

    def loss(
        self,
        text: TextEmbedding,
        target_ids: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> torch.Tensor:
        """Cross-entropy of target_ids[:, 1:] given target_ids[:, :-1]; padding ignored."""
        sub = self.to_vocab[target_ids]  # (B, T) in 0..Vc-1
        logits = self.logits(text, sub[:, :-1], memory, memory_valid)
        return nn.functional.cross_entropy(
            logits.flatten(0, 1), sub[:, 1:].flatten(), ignore_index=0
        )  # index 0 is [PAD]

    def greedy(
        self, text: TextEmbedding, memory: torch.Tensor, memory_valid: torch.Tensor
    ) -> torch.Tensor:
        """Argmax decoding with static shapes -> ids (B, T): [CLS] tokens [SEP] then [PAD]."""
        batch, t = memory.shape[0], self.length
        positions = torch.arange(t, device=memory.device)[None]  # (1, T)
        # Vocabulary indices: [PAD] is 0, [CLS] is 2 (set_vocabulary puts specials first).
        sub = torch.where(positions == 0, 2, 0).expand(batch, t)  # (B, T) int64
        for i in range(t - 1):
            nxt = self.logits(text, sub[:, :-1], memory, memory_valid)[:, i].argmax(-1)  # (B,)
            sub = torch.where(positions == i + 1, nxt[:, None], sub)
        ids = self.vocab_ids[sub]  # (B, T) full ids
        ended = torch.cumsum((ids == SEP_ID).long(), dim=1) - (ids == SEP_ID).long()  # SEP before
        return torch.where(ended > 0, torch.full_like(ids, PAD_ID), ids)
