"""Codec v4's model: 640 model bins warped onto 160 points (model.row_points) -> 20 rows; the
shapes offline and streaming (the step path equals the offline one); a codec-v3-shaped checkpoint
starts a v4 model (train.init_from): every tensor whose shape matches is copied, the per-bin
normaliser (160 -> 640) is skipped, reported and refitted on the run's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqblur.export.testing import TINY_V2, TINY_V4_AUDIO, TINY_V4_MODEL, make_tiny_checkpoint, tiny_config
from vqblur.training.model import VQVAE

from tests.model_checks import check_init_from_v3, check_shapes_offline_and_streaming


def _v4_model(seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    return VQVAE(tiny_config(audio=TINY_V4_AUDIO, **TINY_V2, **TINY_V4_MODEL))


def test_v4_shapes_offline_and_streaming():
    check_shapes_offline_and_streaming(_v4_model().eval(), 640)


def test_init_from_a_v3_checkpoint_copies_what_fits(tmp_path):
    check_init_from_v3(_v4_model(seed=1), tmp_path, 640)


def test_init_from_another_architecture_is_refused(tmp_path):
    from vqblur.common.errors import UserError
    from vqblur.training.checkpoint import init_weights_from

    one_level = make_tiny_checkpoint(tmp_path / "v1", run_folder=False)  # no macro map, one level
    with pytest.raises(UserError, match="do not fit"):
        init_weights_from(_v4_model(), one_level)


def test_a_v4_fine_tune_from_v3_refits_the_normaliser(tmp_path, capsys):
    import soundfile as sf

    from vqblur.training.train import train

    v3 = make_tiny_checkpoint(tmp_path / "v3", run_folder=False, **TINY_V2, row_warp="log")
    src = torch.load(v3, weights_only=False)["model"]
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(2 * 48000) / 48000
    for i in range(2):
        x = 0.3 * np.sin(2 * np.pi * (80 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(str(folder / f"x{i}.wav"), x.astype(np.float32), 48000)
    cfg = tiny_config(audio=TINY_V4_AUDIO, **TINY_V2, **TINY_V4_MODEL)
    cfg.data.source, cfg.data.path, cfg.data.workers, cfg.data.segment_frames = "folder", str(folder), 1, 8
    t_ = cfg.train
    t_.init_from, t_.steps, t_.lr, t_.lr_min, t_.threads = str(v3), 1, 1e-7, 1e-7, 1
    t_.eval_every, t_.checkpoint_every, t_.eval_examples = 1, 1, 1
    train(cfg, tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert "skipped 2 tensor(s)" in err and "normaliser.mean [160] -> [640]" in err and "refitted" in err
    out = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["model"]
    assert out["normaliser.mean"].shape == (640,)
    assert float(out["normaliser.mean"].std()) > 0.1  # fitted on the clips (fresh: all zeros)
    assert float(out["normaliser.std"].min()) < 0.99 or float(out["normaliser.std"].max()) > 1.01
    w = "encoder.net.0.conv.weight"
    assert torch.allclose(out[w], src[w], atol=1e-5)  # started from v3's weights (lr 1e-7, one step)
