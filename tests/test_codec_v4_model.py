"""Codec v4's model: 640 model bins warped onto 160 points (model.row_points) -> 20 rows; the
shapes offline and streaming (the step path equals the offline one); a codec-v3-shaped checkpoint
starts a v4 model (train.init_from): every tensor whose shape matches is copied, the per-bin
normaliser (160 -> 640) is skipped, reported and refitted on the run's data."""

from __future__ import annotations

import pytest
import torch

from vqblur.export.testing import TINY_V2, TINY_V4_AUDIO, TINY_V4_MODEL, make_tiny_checkpoint, tiny_config
from vqblur.training.model import VQVAE

from tests.model_checks import check_init_from_v3, check_shapes_offline_and_streaming, fine_tune_from_v3


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
    v3, out = fine_tune_from_v3(tmp_path, TINY_V4_AUDIO, TINY_V4_MODEL)
    src = torch.load(v3, weights_only=False)["model"]
    err = capsys.readouterr().err
    assert "skipped 2 tensor(s)" in err and "normaliser.mean [160] -> [640]" in err and "refitted" in err
    assert out["normaliser.mean"].shape == (640,)
    assert float(out["normaliser.mean"].std()) > 0.1  # fitted on the clips (fresh: all zeros)
    assert float(out["normaliser.std"].min()) < 0.99 or float(out["normaliser.std"].max()) > 1.01
    w = "encoder.net.0.conv.weight"
    assert torch.allclose(out[w], src[w], atol=1e-5)  # started from v3's weights (lr 1e-7, one step)
