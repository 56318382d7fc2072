#!/usr/bin/env python3
"""Benchmark: control-step latency of a WALL-WM bundle in ONNX Runtime vs torch eager (batch 1,
CPU), the Euler loop inside the sampler graph vs on the host, and the parameter count.

    python scripts/bench_onnx.py                       # default config, random weights
    python scripts/bench_onnx.py --config tiny --threads 1 --repeats 50
    python scripts/bench_onnx.py --checkpoint runs/default

Latency does not depend on the weights' values, so random weights measure the shipped shape.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from wallwm_train.config import load_config
from wallwm_train.export import GRAPHS
from wallwm_train.export import OPSET
from wallwm_train.export import example_inputs
from wallwm_train.export import export_bundle
from wallwm_train.export import run_torch
from wallwm_train.model.wallwm import WallWM
from wallwm_train.samples import NormStats


class Velocity(nn.Module):
    """One denoiser evaluation, for the host-side Euler loop."""

    def __init__(self, model: WallWM):
        super().__init__()
        self.model = model

    def forward(self, x_t, t, memory, memory_valid):
        return self.model.expert.velocity(x_t, t, memory, memory_valid)


class EulerLoop(Velocity):
    """All Euler steps in one graph (what the sampler graphs do), without the heads."""

    def forward(self, noise, memory, memory_valid):
        return self.model.expert.sample(noise, memory, memory_valid)


def timed(fn, repeats: int) -> float:
    fn()
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def sessions(bundle: Path, names, threads: int) -> dict[str, ort.InferenceSession]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return {
        n: ort.InferenceSession(
            str(bundle / f'{n}.onnx'), opts, providers=['CPUExecutionProvider']
        )
        for n in names
    }


def chain(sess: dict, names, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tensors = dict(feeds)
    for n in names:
        s = sess[n]
        outs = s.run(None, {i.name: tensors[i.name] for i in s.get_inputs()})
        tensors.update(zip([o.name for o in s.get_outputs()], outs, strict=True))
    return tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='default')
    parser.add_argument('--checkpoint', type=Path)
    parser.add_argument('--threads', type=int, default=1, help='ORT and torch threads')
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from wallwm_train.train import load_trained

        model, cfg, norm = load_trained(args.checkpoint)
    else:
        cfg = load_config(
            args.config,
            ['model.init_text_from_minilm=false', 'train.modes=[event, unified, chunk]'],
        )
        torch.manual_seed(0)
        model = WallWM(cfg.model, cfg.train.modes)
        j = cfg.model.num_joints
        norm = NormStats(*(np.zeros(j, np.float32), np.ones(j, np.float32)) * 2)
    model.eval()
    total = sum(p.numel() for p in model.parameters())
    text = model.text.token.weight.numel()
    print(
        f'config {cfg.name}: {total / 1e6:.2f} M parameters '
        f'({text / 1e6:.2f} M in the text embedding table, {(total - text) / 1e6:.2f} M other)'
    )
    print(f'threads {args.threads}, median of {args.repeats} runs, batch 1, CPU')
    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_bundle(model, cfg, norm, Path(tmp) / 'bundle')
        from wallwm_train.export import MODE_GRAPHS

        print(f'{"mode":8s} {"stage":10s} {"ORT ms":>8s} {"torch ms":>9s} {"speed-up":>8s}')
        for mode in model.modes:
            per_event, per_step = MODE_GRAPHS[mode]
            inputs = example_inputs(model, mode)
            feeds = {k: v.numpy() for k, v in inputs.items()}
            sess = sessions(bundle, set(per_event + per_step), args.threads)
            cached = chain(sess, per_event, feeds) if per_event else feeds
            cached_t = {k: torch.from_numpy(np.asarray(v)) for k, v in cached.items()}
            for stage, names, base in (
                ('per_event', per_event, feeds),
                ('per_step', per_step, cached),
            ):
                if not names:
                    continue
                ort_ms = timed(lambda n=names, b=base, s=sess: chain(s, n, b), args.repeats)
                base_t = (
                    {k: torch.from_numpy(np.asarray(v)) for k, v in base.items()}
                    if stage == 'per_event'
                    else cached_t
                )

                def eager(n=names, b=base_t):
                    with torch.no_grad():
                        tensors = dict(b)
                        for name in n:
                            g = GRAPHS[name](model)
                            out = g(*[tensors[i] for i in g.inputs])
                            out = out if isinstance(out, tuple) else (out,)
                            tensors.update(zip(g.outputs, out, strict=True))

                torch_ms = timed(eager, args.repeats)
                print(
                    f'{mode:8s} {stage:10s} {ort_ms:8.2f} {torch_ms:9.2f} '
                    f'{torch_ms / ort_ms:7.1f}x'
                )
        # Euler loop: all steps inside one graph vs a host loop over a one-step velocity graph,
        # both over the same memory (the prefix states) and noise, without the heads.
        lengths = {cfg.model.action_steps(m): m for m in model.modes}
        for mode in lengths.values():
            euler_comparison(model, mode, Path(tmp), args.threads, args.repeats)


def euler_comparison(model: WallWM, mode: str, tmp: Path, threads: int, repeats: int) -> None:
    """All Euler steps inside one graph vs a host loop over a one-step velocity graph, both over
    the same memory (the prefix states) and noise, without the heads."""
    inputs = example_inputs(model, mode)
    prefix = run_torch(model, mode, inputs)['observation_encoder']
    noise = inputs['noise']
    memory = (prefix['prefix_states'], prefix['prefix_valid'])
    loop_path = _export(
        EulerLoop(model),
        (noise, *memory),
        ['noise', 'memory', 'memory_valid'],
        ['actions'],
        tmp / f'euler_loop_{mode}.onnx',
    )
    vel_path = _export(
        Velocity(model),
        (noise, torch.zeros(1), *memory),
        ['x_t', 't', 'memory', 'memory_valid'],
        ['velocity'],
        tmp / f'velocity_{mode}.onnx',
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    vsess = ort.InferenceSession(str(vel_path), opts, providers=['CPUExecutionProvider'])
    lsess = ort.InferenceSession(str(loop_path), opts, providers=['CPUExecutionProvider'])
    steps = model.cfg.flow_steps
    feed = {'memory': memory[0].numpy(), 'memory_valid': memory[1].numpy()}
    x0 = noise.numpy()

    def host_loop():
        x = x0
        for i in range(steps):
            t = np.full((1,), i / steps, np.float32)
            x = x + vsess.run(None, {'x_t': x, 't': t, **feed})[0] / steps
        return x

    def in_graph():
        return lsess.run(None, {'noise': x0, **feed})[0]

    assert np.abs(in_graph() - host_loop()).max() < 1e-4
    in_ms = timed(in_graph, repeats)
    host_ms = timed(host_loop, repeats)
    faster = 'in graph' if in_ms < host_ms else 'host loop'
    print(
        f'Euler loop ({steps} steps, {x0.shape[1]} action steps): in graph {in_ms:.2f} ms, '
        f'host loop over a velocity graph {host_ms:.2f} ms -> {faster} faster '
        f'({max(in_ms, host_ms) / min(in_ms, host_ms):.2f}x)'
    )


def _export(module: nn.Module, args, inputs, outputs, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


if __name__ == '__main__':
    main()
