"""Transformer backbone with block-causal attention, run one block at a time.

Blocks, in order: [images + proprio + instruction] <- [event text | Staircase thoughts].
A block attends to itself and to every earlier block, never to a later one. Because the prefix
does not depend on what follows, it runs once (`encode_prefix`) and leaves a cache of its input to
every layer, (B, L, P, D); later blocks (`encode_block`, the staircase) read that cache at each
layer. The action expert is the last block: it reads the backbone's final hidden states.
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.layers import Block
from wallwm_train.model.layers import key_bias


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def encode_prefix(
        self, x: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, P, D), valid (B, P) -> cache (B, L, P, D) of layer inputs, out (B, P, D)."""
        bias = key_bias(valid)  # (B, 1, 1, P)
        inputs = []
        for layer in self.layers:
            inputs.append(x)
            x = layer(x, None, bias)
        return torch.stack(inputs, dim=1), self.norm(x)

    def encode_block(
        self, x: torch.Tensor, valid: torch.Tensor, cache: torch.Tensor, cache_valid: torch.Tensor
    ) -> torch.Tensor:
        """A block of tokens (B, E, D) attending to itself (bidirectional, `valid` (B, E)) and to
        the prefix cache at every layer -> final hidden states (B, E, D)."""
        bias = key_bias(torch.cat([cache_valid, valid], dim=1))  # (B, 1, 1, P + E)
        for i, layer in enumerate(self.layers):
            x = layer(x, cache[:, i], bias)
        return self.norm(x)
