"""Export: the tiny model -> a bundle the runtime validates, ONNX Runtime matching torch."""

import numpy as np
import pytest
import torch
from wallwm_train.export import _manifest_module
from wallwm_train.export import example_inputs
from wallwm_train.export import export_bundle
from wallwm_train.export import main as export_main
from wallwm_train.export import run_onnx
from wallwm_train.export import run_torch
from wallwm_train.tolerances import ONNX_PARITY_ATOL
from wallwm_train.train import fit_in_memory


@pytest.fixture(scope='module')
def trained(episodes):
    from wallwm_train.config import load_config

    cfg = load_config('tiny', ['train.steps=20'])
    model, norm = fit_in_memory(cfg, episodes)
    return model.eval(), cfg, norm


@pytest.fixture(scope='module')
def bundle(trained, tmp_path_factory):
    model, cfg, norm = trained
    return export_bundle(model, cfg, norm, tmp_path_factory.mktemp('bundle'))


def test_manifest_is_valid_and_lists_every_mode(bundle, trained):
    mf = _manifest_module()
    manifest = mf.load(bundle)
    mf.verify_files(manifest, bundle)
    assert set(manifest.modes) == {'event', 'unified', 'chunk'}
    cfg = trained[1].model
    assert manifest.modes['event'].action_steps == cfg.event_action_steps
    assert manifest.modes['unified'].per_event == ('observation_encoder', 'staircase')
    assert manifest.cameras[0].height == cfg.image_size
    assert manifest.graphs['staircase'].output('caption_ids').dtype == 'int64'


@pytest.mark.parametrize('mode', ['event', 'unified', 'chunk'])
def test_onnx_runtime_matches_torch_for_every_output(bundle, trained, mode):
    model = trained[0]
    for seed in (1, 2):
        inputs = example_inputs(model, mode, seed=seed)
        expected = run_torch(model, mode, inputs)
        got = run_onnx(bundle, mode, {k: v.numpy() for k, v in inputs.items()})
        for graph, outputs in expected.items():
            for name, value in outputs.items():
                diff = np.abs(value.numpy().astype(np.float64) - got[graph][name]).max()
                assert diff <= ONNX_PARITY_ATOL, f'{mode}/{graph}/{name}: {diff}'


def test_caption_decoding_is_well_formed(bundle, trained):
    from wallwm_train.model.caption import CLS_ID
    from wallwm_train.model.caption import PAD_ID
    from wallwm_train.model.caption import SEP_ID

    model = trained[0]
    ids = run_torch(model, 'unified', example_inputs(model, 'unified'))['staircase'][
        'caption_ids'
    ][0].tolist()
    assert ids[0] == CLS_ID
    if SEP_ID in ids:
        assert all(i == PAD_ID for i in ids[ids.index(SEP_ID) + 1 :])
    allowed = set(model.caption.vocab_ids.tolist())
    assert set(ids) <= allowed | {PAD_ID}


def test_export_cli_rejects_a_missing_checkpoint(tmp_path, capsys):
    assert export_main(['--checkpoint', str(tmp_path / 'nope'), '--out', str(tmp_path / 'b')]) == 2
    assert 'not a wallwm checkpoint' in capsys.readouterr().err


def test_export_cli_from_a_run_folder(tmp_path, episodes):
    from wallwm_train.config import load_config

    cfg = load_config('tiny', ['train.steps=2', 'train.checkpoint_every=2', 'train.modes=[chunk]'])
    fit_in_memory(cfg, episodes, run_dir=tmp_path / 'run')
    assert export_main(['--checkpoint', str(tmp_path / 'run'), '--out', str(tmp_path / 'b')]) == 0
    manifest = _manifest_module().load(tmp_path / 'b')
    assert set(manifest.modes) == {'chunk'}
    assert torch.__version__ == manifest.created_by['torch']
