"""`wallwm-export`: a trained checkpoint -> a model bundle (ONNX graphs, tokenizer, manifest).

Graphs (docs/contracts.md); intermediate tensor names are ours:

    observation_encoder  images, state, instruction_ids, instruction_mask
                         -> prefix_cache (1, L, P, D), prefix_states (1, P, D), prefix_valid (1, P)
    event_encoder        prefix_cache, prefix_valid, event_ids, event_mask
                         [, images: with model.event_keypoints] -> event_states
    event_sampler        prefix_states, prefix_valid, event_states, event_mask, noise
                         -> actions, boundary_logits, progress         (Euler loop in the graph)
    staircase            prefix_cache, prefix_valid -> thoughts (1, K, D), caption_ids
    unified_sampler      prefix_states, prefix_valid, thoughts, noise
                         -> actions, boundary_logits, progress
    chunk_sampler        prefix_states, prefix_valid, noise -> actions

The Euler loop runs inside the sampler graphs: scripts/bench_onnx.py measured it against a
host-side loop over a one-step velocity graph (see that script's output).

    wallwm-export --checkpoint runs/default --out bundles/default
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import wallwm_train
from wallwm_train import checkpoint
from wallwm_train.config import MODE_CHUNK
from wallwm_train.config import MODE_EVENT
from wallwm_train.config import MODE_UNIFIED
from wallwm_train.config import Config
from wallwm_train.model.wallwm import WallWM
from wallwm_train.samples import NormStats
from wallwm_train.tokenizer import TOKENIZER_FILE
from wallwm_train.tokenizer import save_tokenizer

OPSET = 18
OBSERVATION_ENCODER = 'observation_encoder'
EVENT_ENCODER = 'event_encoder'
EVENT_SAMPLER = 'event_sampler'
STAIRCASE = 'staircase'
UNIFIED_SAMPLER = 'unified_sampler'
CHUNK_SAMPLER = 'chunk_sampler'
# Intermediate tensors between graphs.
PREFIX_CACHE = 'prefix_cache'
PREFIX_STATES = 'prefix_states'
PREFIX_VALID = 'prefix_valid'
EVENT_STATES = 'event_states'
THOUGHTS = 'thoughts'


def _manifest_module():
    try:
        from wallwm_policy.core import manifest
    except ImportError:  # before the colcon build: the source tree (docs/contracts.md)
        root = Path(__file__).resolve().parents[2] / 'src' / 'wallwm_policy'
        sys.path.insert(0, str(root))
        from wallwm_policy.core import manifest
    return manifest


# ---- graph bodies (thin modules over the model's export boundaries) --------------------------


class ObservationEncoder(nn.Module):
    inputs = ('images', 'state', 'instruction_ids', 'instruction_mask')
    outputs = (PREFIX_CACHE, PREFIX_STATES, PREFIX_VALID)

    def __init__(self, model: WallWM):
        super().__init__()
        self.model = model

    def forward(self, images, state, instruction_ids, instruction_mask):
        return self.model.encode_observation(images, state, instruction_ids, instruction_mask)


class EventEncoder(ObservationEncoder):
    outputs = (EVENT_STATES,)

    def __init__(self, model: WallWM):
        super().__init__(model)
        self.inputs = (PREFIX_CACHE, PREFIX_VALID, 'event_ids', 'event_mask')
        if model.event_goal is not None:  # the goal token reads the cameras
            self.inputs += ('images',)

    def forward(self, prefix_cache, prefix_valid, event_ids, event_mask, images=None):
        states, _ = self.model.encode_event(
            prefix_cache, prefix_valid, event_ids, event_mask, images
        )
        return states


class EventSampler(ObservationEncoder):
    inputs = (PREFIX_STATES, PREFIX_VALID, EVENT_STATES, 'event_mask', 'noise')
    outputs = ('actions', 'boundary_logits', 'progress')

    def forward(self, prefix_states, prefix_valid, event_states, event_mask, noise):
        event_valid = self.model.event_valid(event_mask)
        memory, valid = self.model.join(prefix_states, prefix_valid, event_states, event_valid)
        return self.model.act(memory, valid, noise, with_heads=True)


class StaircaseGraph(ObservationEncoder):
    inputs = (PREFIX_CACHE, PREFIX_VALID)
    outputs = (THOUGHTS, 'caption_ids')

    def forward(self, prefix_cache, prefix_valid):
        thoughts = self.model.think(prefix_cache, prefix_valid)
        return thoughts, self.model.decode_caption(thoughts)


class UnifiedSampler(ObservationEncoder):
    inputs = (PREFIX_STATES, PREFIX_VALID, THOUGHTS, 'noise')
    outputs = ('actions', 'boundary_logits', 'progress')

    def forward(self, prefix_states, prefix_valid, thoughts, noise):
        ones = torch.ones(thoughts.shape[:2], device=thoughts.device)
        memory, valid = self.model.join(prefix_states, prefix_valid, thoughts, ones)
        return self.model.act(memory, valid, noise, with_heads=True)


class ChunkSampler(ObservationEncoder):
    inputs = (PREFIX_STATES, PREFIX_VALID, 'noise')
    outputs = ('actions',)

    def forward(self, prefix_states, prefix_valid, noise):
        return self.model.act(prefix_states, prefix_valid, noise, with_heads=False)


GRAPHS = {
    OBSERVATION_ENCODER: ObservationEncoder,
    EVENT_ENCODER: EventEncoder,
    EVENT_SAMPLER: EventSampler,
    STAIRCASE: StaircaseGraph,
    UNIFIED_SAMPLER: UnifiedSampler,
    CHUNK_SAMPLER: ChunkSampler,
}
MODE_GRAPHS = {
    MODE_EVENT: ((), (OBSERVATION_ENCODER, EVENT_ENCODER, EVENT_SAMPLER)),
    MODE_UNIFIED: ((OBSERVATION_ENCODER, STAIRCASE), (OBSERVATION_ENCODER, UNIFIED_SAMPLER)),
    MODE_CHUNK: ((), (OBSERVATION_ENCODER, CHUNK_SAMPLER)),
}


def example_inputs(model: WallWM, mode: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random runtime inputs for one mode (batch 1), as the runtime provides them."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    instr_len = max(2, cfg.instruction_tokens // 2)
    event_len = max(2, cfg.event_tokens // 2)
    ids = torch.randint(1000, 3000, (1, cfg.instruction_tokens), generator=g)
    return {
        'images': torch.rand(1, len(cfg.cameras), 3, cfg.image_size, cfg.image_size, generator=g),
        'state': torch.randn(1, cfg.num_joints, generator=g),
        'instruction_ids': torch.where(torch.arange(cfg.instruction_tokens) < instr_len, ids, 0),
        'instruction_mask': (torch.arange(cfg.instruction_tokens) < instr_len).long()[None],
        'event_ids': torch.where(
            torch.arange(cfg.event_tokens) < event_len,
            torch.randint(1000, 3000, (1, cfg.event_tokens), generator=g),
            0,
        ),
        'event_mask': (torch.arange(cfg.event_tokens) < event_len).long()[None],
        'noise': torch.randn(1, cfg.action_steps(mode), cfg.num_joints, generator=g),
    }


def run_torch(
    model: WallWM, mode: str, inputs: dict[str, torch.Tensor]
) -> dict[str, dict[str, torch.Tensor]]:
    """Evaluate a mode's graphs in torch the way the runtime chains them: {graph: outputs}."""
    per_event, per_step = MODE_GRAPHS[mode]
    tensors = dict(inputs)
    results = {}
    with torch.no_grad():
        for name in per_event + per_step:
            graph = GRAPHS[name](model).eval()
            outs = graph(*[tensors[i] for i in graph.inputs])
            outs = outs if isinstance(outs, tuple) else (outs,)
            results[name] = dict(zip(graph.outputs, outs, strict=True))
            tensors.update(results[name])
    return results


def _export_graph(graph: nn.Module, args: tuple[torch.Tensor, ...], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix('torch.')


def export_bundle(
    model: WallWM, cfg: Config, norm: NormStats, out_dir: Path, control_rate_hz: float = 30.0
) -> Path:
    """Write every graph the model's modes need, the tokenizer and a validated manifest."""
    mf = _manifest_module()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    graph_specs = {}
    for mode in model.modes:
        inputs = example_inputs(model, mode)
        results = run_torch(model, mode, inputs)
        tensors = dict(inputs)
        per_event, per_step = MODE_GRAPHS[mode]
        for name in per_event + per_step:
            graph = GRAPHS[name](model).eval()
            args = tuple(tensors[i] for i in graph.inputs)
            if name not in graph_specs:
                _export_graph(graph, args, out_dir / f'{name}.onnx')
                graph_specs[name] = mf.GraphSpec(
                    file=f'{name}.onnx',
                    inputs=[
                        mf.TensorSpec(i, _dtype(tensors[i]), tuple(tensors[i].shape))
                        for i in graph.inputs
                    ],
                    outputs=[
                        mf.TensorSpec(o, _dtype(t), tuple(t.shape))
                        for o, t in results[name].items()
                    ],
                )
            tensors.update(results[name])
    save_tokenizer(out_dir / TOKENIZER_FILE)
    files = mf.hash_files(out_dir, [g.file for g in graph_specs.values()] + [TOKENIZER_FILE])
    digest = mf.sha256_file(out_dir / graph_specs[OBSERVATION_ENCODER].file)[:12]
    mc = cfg.model
    modes = {}
    for mode in model.modes:
        per_event, per_step = MODE_GRAPHS[mode]
        modes[mode] = mf.ModeSpec(
            per_event=per_event,
            per_step=per_step,
            action_steps=mc.action_steps(mode),
            reads_instruction=mode != MODE_EVENT or mc.event_reads_instruction,
        )
    manifest = mf.Manifest(
        bundle_id=f'wallwm-{cfg.name}-{digest}',
        created_by={
            'wallwm_train': wallwm_train.__version__,
            'torch': torch.__version__,
            'onnx_opset': OPSET,
            'config': cfg.name,
            'seed': cfg.train.seed,
            'flow_steps': mc.flow_steps,
            'num_thoughts': mc.num_thoughts,
        },
        joint_names=mc.joint_names,
        cameras=[mf.CameraSpec(c, mc.image_size, mc.image_size) for c in mc.cameras],
        control_rate_hz=float(control_rate_hz),
        normalization=mf.Normalization(
            state=mf.NormStats(norm.state_mean.tolist(), norm.state_std.tolist()),
            action=mf.NormStats(norm.action_mean.tolist(), norm.action_std.tolist()),
        ),
        tokenizer=mf.TokenizerSpec(TOKENIZER_FILE, mc.instruction_tokens, mc.event_tokens, 0),
        modes=modes,
        graphs=graph_specs,
        files=files,
    )
    mf.dump(manifest, out_dir)
    return out_dir


def run_onnx(
    bundle: Path, mode: str, inputs: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """Evaluate a mode's graphs with ONNX Runtime (CPU), chained by tensor name."""
    import onnxruntime as ort

    mf = _manifest_module()
    manifest = mf.load(bundle)
    spec = manifest.modes[mode]
    tensors = dict(inputs)
    results = {}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    for name in spec.per_event + spec.per_step:
        g = manifest.graphs[name]
        sess = ort.InferenceSession(
            str(Path(bundle) / g.file), opts, providers=['CPUExecutionProvider']
        )
        outs = sess.run([o.name for o in g.outputs], {i.name: tensors[i.name] for i in g.inputs})
        results[name] = dict(zip([o.name for o in g.outputs], outs, strict=True))
        tensors.update(results[name])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='wallwm-export', description=__doc__.split('\n')[0])
    parser.add_argument(
        '--checkpoint',
        required=True,
        type=Path,
        help='checkpoint folder or run folder (uses checkpoints/latest)',
    )
    parser.add_argument('--out', required=True, type=Path, help='bundle folder to write')
    parser.add_argument(
        '--control-rate', type=float, default=0.0, help="Hz (default: the training data's fps)"
    )
    args = parser.parse_args(argv)
    from wallwm_train.train import load_trained_with_state

    try:
        model, cfg, norm, state = load_trained_with_state(args.checkpoint)
    except checkpoint.CheckpointError as exc:
        print(f'wallwm-export: {exc}', file=sys.stderr)
        return 2
    rate = args.control_rate or state.get('fps') or 30.0
    export_bundle(model, cfg, norm, args.out, rate)
    print(f'wrote {args.out} (modes: {", ".join(model.modes)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
