"""Staircase Decoding: K latent thought slots for the event climb the top backbone layers.

Definition (ours). Let the backbone have L layers and the staircase use the top L_s of them,
starting at layer b = L - L_s; the layers below b run only the prefix (computed once, cached).
Thought k (k = 0..K-1) enters layer b with input  x_k = q_k + W h_{k-1},  where q_k is a learned
slot embedding and h_{k-1} is thought k-1's output of layer b (its input to layer b+1: the thought
before it, one layer up); at every layer b+j a thought attends to the prefix's cached input to
that layer, to the inputs of thoughts 0..k-1 at that same layer, and to itself. In the wavefront
schedule, at layer-step s = 0 .. L_s+K-2 thought k sits at layer b + (s - k) (when
0 <= s-k < L_s): everything it needs was produced at steps < s, so all K thoughts finish after
L_s + K - 1 layer-steps, where decoding them one at a time through the whole stack (each thought
fed back as the next one's input) takes K * L_s.

`Staircase.forward` computes exactly the same numbers layer-major, as training and the exported
graph want: layer b runs K times (one thought each, the staircase entry), layers b+1.. run once on
all K thoughts with a causal mask among them - L_s + K - 1 layer applications in total.
`run_wavefront` executes the literal schedule, step by step, for tests and for reading.
The thoughts' final hidden states condition the action expert and a caption decoder (the text
anchor); nothing is sampled in between, so the action loss reaches the backbone through them.
"""

from __future__ import annotations

import torch
from torch import nn

from wallwm_train.config import ModelConfig
from wallwm_train.model.backbone import Backbone
from wallwm_train.model.layers import NEG_INF
from wallwm_train.model.layers import key_bias


def staircase_schedule(num_thoughts: int, num_layers: int) -> list[list[tuple[int, int]]]:
    """Layer-steps of the wavefront: step s lists (thought k, staircase layer j = s - k)."""
    steps = []
    for s in range(num_layers + num_thoughts - 1):
        steps.append([(k, s - k) for k in range(num_thoughts) if 0 <= s - k < num_layers])
    return steps


class Staircase(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_thoughts = cfg.num_thoughts
        self.first_layer = cfg.depth - cfg.staircase_layers
        self.slots = nn.Parameter(torch.randn(cfg.num_thoughts, cfg.dim) * 0.02)  # q_k
        self.entry = nn.Linear(cfg.dim, cfg.dim)  # W

    def _entry(self, k: int, prev_out: torch.Tensor | None, batch: int) -> torch.Tensor:
        x = self.slots[k].expand(batch, 1, -1)  # (B, 1, D)
        return x if prev_out is None else x + self.entry(prev_out)

    def forward(
        self, backbone: Backbone, cache: torch.Tensor, cache_valid: torch.Tensor
    ) -> torch.Tensor:
        """cache (B, L, P, D), cache_valid (B, P) -> thoughts (B, K, D), final-normed."""
        b = self.first_layer
        batch = cache.shape[0]
        layers = backbone.layers
        prefix_bias = key_bias(cache_valid)  # (B, 1, 1, P)
        # Layer b: the staircase entry, one thought after the other.
        inputs, outputs = [], []
        for k in range(self.num_thoughts):
            x = self._entry(k, outputs[-1] if outputs else None, batch)
            ctx = torch.cat([cache[:, b], *inputs], dim=1)  # (B, P + k, D)
            bias = torch.cat([prefix_bias, prefix_bias.new_zeros(batch, 1, 1, k + 1)], dim=-1)
            inputs.append(x)
            outputs.append(layers[b](x, ctx, bias))
        h = torch.cat(outputs, dim=1)  # (B, K, D)
        # Layers b+1..L-1: all thoughts at once, causal among thoughts.
        k_count = self.num_thoughts
        causal = torch.where(
            torch.ones(k_count, k_count, dtype=torch.bool, device=cache.device).tril(),
            0.0,
            NEG_INF,
        )
        bias = torch.cat(
            [
                prefix_bias.expand(batch, 1, k_count, -1),
                causal[None, None].expand(batch, 1, -1, -1),
            ],
            dim=-1,
        )
        for i in range(b + 1, len(layers)):
            h = layers[i](h, cache[:, i], bias)
        return backbone.norm(h)

    def run_wavefront(
        self, backbone: Backbone, cache: torch.Tensor, cache_valid: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """The literal schedule: returns (thoughts (B, K, D), number of layer-steps run).

        Each step reads only states produced by earlier steps (a snapshot), so a schedule that
        asked for something not yet computed would fail with KeyError.
        """
        b = self.first_layer
        num_layers = len(backbone.layers) - b
        batch = cache.shape[0]
        prefix_bias = key_bias(cache_valid)
        layer_in: dict[tuple[int, int], torch.Tensor] = {}  # (k, j) -> input of layer b+j
        layer_out: dict[tuple[int, int], torch.Tensor] = {}  # (k, j) -> output of layer b+j
        steps = 0
        for step in staircase_schedule(self.num_thoughts, num_layers):
            done_in, done_out = dict(layer_in), dict(layer_out)  # what earlier steps produced
            for k, j in step:
                if j == 0:
                    x = self._entry(k, done_out[(k - 1, 0)] if k else None, batch)
                else:
                    x = done_out[(k, j - 1)]
                ctx = torch.cat([cache[:, b + j]] + [done_in[(i, j)] for i in range(k)], dim=1)
                bias = torch.cat([prefix_bias, prefix_bias.new_zeros(batch, 1, 1, k + 1)], dim=-1)
                layer_in[(k, j)] = x
                layer_out[(k, j)] = backbone.layers[b + j](x, ctx, bias)
            steps += 1
        top = num_layers - 1
        h = torch.cat([layer_out[(k, top)] for k in range(self.num_thoughts)], dim=1)
        return backbone.norm(h), steps
