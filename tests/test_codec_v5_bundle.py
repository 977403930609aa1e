"""Codec v5 bundles: the export writes the split framing into the manifest (n_fft 320,
long_n_fft 1280, crossover_hz 1500, window split_sqrt_hann, model_bins 190, row_points 160,
latency 399), the step graphs take and give [1, F, 190] and match the PyTorch model,
engine/bundle.py reads it back (the layout, the rows' edges on the log warp up to the top model
bin, 23850 Hz), and refuses manifests that do not fit the split framing. Old bundles (the shipped
v3 one) load as before."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.common.errors import BundleError  # noqa: E402
from vqblur.common.freqaxis import warp_hz  # noqa: E402
from vqblur.engine.bundle import load_bundle, load_default_bundle  # noqa: E402
from vqblur.export.testing import TINY_V5_AUDIO, TINY_V5_MODEL, harmonic_signal  # noqa: E402

from tests.model_checks import check_graphs_match_the_model, edited_bundle, export_tiny_bundle  # noqa: E402


@pytest.fixture(scope="module")
def v5(tmp_path_factory):
    return export_tiny_bundle(tmp_path_factory.mktemp("v5"), audio=TINY_V5_AUDIO, **TINY_V5_MODEL)


def test_v5_manifest_and_bundle_fields(v5):
    _, bundle = v5
    b = load_bundle(bundle)
    m = b.manifest
    assert (m["n_fft"], m["hop"], m["long_n_fft"], m["crossover_hz"]) == (320, 80, 1280, 1500.0)
    assert (m["synthesis_len"], m["window"]) == (0, "split_sqrt_hann")
    assert (m["model_bins"], m["row_points"], m["rows"], m["latency_samples"]) == (190, 160, 20, 399)
    assert (b.n_fft, b.long_n_fft, b.crossover_hz, b.model_bins, b.row_points) == (320, 1280, 1500.0, 190, 160)
    assert b.split and not b.asymmetric and b.latency_samples == 399 and b.synthesis_samples == 320
    lay = b.split_layout()
    assert lay.model_bins == 190 and len(lay.long_bins) == 40 and list(lay.short_bins[[0, -1]]) == [10, 159]
    f = b.model_bin_hz()
    assert f.shape == (190,) and f[39] == 1462.5 and f[40] == 1500.0 and f[-1] == 23850.0
    e = b.row_edges_hz()
    assert np.allclose(e, warp_hz(np.arange(21) / 20, 1000.0, 23850.0))
    assert e[0] == 0 and abs(e[-1] - 23850.0) < 1e-6 and 170 < e[1] < 180
    # the same edges as the shipped v3 bundle (same top bin, same break)
    assert np.allclose(e, load_default_bundle().row_edges_hz())
    import onnx

    enc = onnx.load(str(b.encoder_path))
    assert [d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim] == [1, 2, 190]
    dec = onnx.load(str(b.decoder_path))
    assert [d.dim_value for d in dec.graph.output[0].type.tensor_type.shape.dim][1:] == [2, 190]


def test_v5_graphs_match_the_model(v5):
    check_graphs_match_the_model(*v5)


def test_v5_bundle_numpy_features_are_the_split_ones(v5):
    from vqblur.export.quantize import _numpy_logmag
    from vqblur.training.checkpoint import load_checkpoint
    from vqblur.training.features import numpy_log_magnitude

    ckpt, bundle = v5
    b = load_bundle(bundle)
    x = harmonic_signal(0.5, 48000, seed=5)
    got = _numpy_logmag(x, b)
    cfg = load_checkpoint(ckpt)[1]
    ref = numpy_log_magnitude(x, cfg.audio)[:, : got.shape[1]]
    assert got.shape[0] == 190 and np.abs(got - ref).max() < 1e-5


@pytest.mark.parametrize("changes, words", [
    ({"window": "sqrt_hann_periodic"}, "'long_n_fft' 1280 is the split framing: its window is 'split_sqrt_hann'"),
    ({"window": "asym_sqrt_hann"}, "its window is 'split_sqrt_hann'"),
    ({"long_n_fft": 0}, "'split_sqrt_hann', which needs the split framing's 'long_n_fft'"),
    ({"long_n_fft": None}, "needs the split framing's 'long_n_fft'"),
    ({"long_n_fft": 1000}, "multiple of n_fft"),
    ({"long_n_fft": "1280"}, "'long_n_fft' must be an integer"),
    ({"crossover_hz": "1500"}, "'crossover_hz' must be a number"),
    ({"crossover_hz": 3000.0}, "'model_bins' is 190, but the split framing .* has 220"),
    ({"crossover_hz": 30000.0}, "crossover_hz"),
    ({"model_bins": 160}, "'model_bins' is 160, but the split framing"),
    ({"synthesis_len": 160}, "'synthesis_len' 160 must be 0 with the split framing"),
    ({"row_warp": "linear"}, "needs 'row_warp' 'log'"),
    ({"latency_samples": 1359}, "'latency_samples' is 1359, but the framing .* gives 399"),
    ({"row_points": 200}, "'row_points' 200 must lie between"),
])
def test_inconsistent_v5_manifests_are_refused(v5, tmp_path, changes, words):
    _, bundle = v5
    with pytest.raises(BundleError, match=words):
        load_bundle(edited_bundle(bundle, tmp_path, **changes))


def test_old_bundles_are_one_window():
    b = load_default_bundle()
    assert "long_n_fft" not in b.manifest and "crossover_hz" not in b.manifest
    assert (b.long_n_fft, b.crossover_hz, b.split, b.split_layout()) == (0, 1500.0, False, None)
    assert b.model_bins == 160 and b.latency_samples == 399
    assert np.allclose(b.model_bin_hz(), np.arange(160) * 150.0)
