"""Attention and MLP building blocks shared by the backbone, caption decoder and action expert.

Attention is written out (matmul + softmax with an additive bias) rather than through SDPA so that
every graph exports to plain ONNX ops with static shapes. Masks are additive biases: 0 where a
query may attend, NEG_INF where it may not; `key_bias` turns a (B, K) validity mask into one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NEG_INF = -1e9  # finite, so fully masked rows give a uniform softmax instead of NaN


def key_bias(valid: torch.Tensor) -> torch.Tensor:
    """(B, K) validity (1 = attend) -> additive bias (B, 1, 1, K)."""
    return ((1.0 - valid.float()) * NEG_INF)[:, None, None, :]


def causal_bias(n: int, device=None) -> torch.Tensor:
    """(1, 1, n, n): query i attends keys <= i."""
    mask = torch.ones(n, n, dtype=torch.bool, device=device).tril()
    return torch.where(mask, 0.0, NEG_INF)[None, None]


class Attention(nn.Module):
    """Multi-head attention of queries `x` over keys/values `kv` (already normalised)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, kv: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, q_len, dim = x.shape
        k_len = kv.shape[1]
        h = self.heads
        q = self.q(x).view(b, q_len, h, dim // h).transpose(1, 2)  # (B, H, Q, Dh)
        k = self.k(kv).view(b, k_len, h, dim // h).transpose(1, 2)  # (B, H, K, Dh)
        v = self.v(kv).view(b, k_len, h, dim // h).transpose(1, 2)  # (B, H, K, Dh)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dim // h) + bias  # (B, H, Q, K)
        out = scores.softmax(-1) @ v  # (B, H, Q, Dh)
        return self.out(out.transpose(1, 2).reshape(b, q_len, dim))


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(nn.functional.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer layer whose tokens also attend to a context of other tokens' inputs.

    `ctx` (B, C, D) holds the raw (un-normalised) inputs to this same layer of tokens in earlier
    attention blocks (the prefix cache, earlier thoughts); keys/values are LN(cat(ctx, x)). This is
    how block-causal attention runs one block at a time: later blocks read earlier blocks' cached
    layer inputs, never the reverse.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(
        self, x: torch.Tensor, ctx: torch.Tensor | None, bias: torch.Tensor
    ) -> torch.Tensor:
        # x (B, Q, D); ctx (B, C, D) or None; bias (B|1, 1|H, Q, C + Q)
        kv = x if ctx is None else torch.cat([ctx, x], dim=1)
        x = x + self.attn(self.norm1(x), self.norm1(kv), bias)
        return x + self.mlp(self.norm2(x))


class CrossBlock(nn.Module):
    """Self-attention, cross-attention to a memory, MLP (caption decoder, expert, heads)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, memory_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, kv_dim=memory_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(
        self,
        x: torch.Tensor,
        self_bias: torch.Tensor,
        memory: torch.Tensor,
        memory_bias: torch.Tensor,
    ) -> torch.Tensor:
        # x (B, Q, D); memory (B, M, Dm) already normalised; memory_bias (B, 1, 1, M)
        h = self.norm1(x)
        x = x + self.self_attn(h, h, self_bias)
        x = x + self.cross_attn(self.norm2(x), memory, memory_bias)
        return x + self.mlp(self.norm3(x))


def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, dim) sin/cos features."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None] * 1000.0
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
