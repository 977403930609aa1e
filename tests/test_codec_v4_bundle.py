"""Codec v4 bundles: the export writes the asymmetric framing into the manifest (n_fft 1280,
synthesis_len 320, window asym_sqrt_hann, model_bins 640, row_points 160, latency 399, the v3
latency), the step graphs still take and give [1, F, model_bins] and match the PyTorch model,
engine/bundle.py reads it all back (the rows' edges on the v4 bins' log axis), and refuses a
manifest whose window name, synthesis length or latency does not fit the framing. The shipped
(v3) bundle loads as before."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.common.errors import BundleError  # noqa: E402
from vqblur.common.freqaxis import warp_hz  # noqa: E402
from vqblur.engine.bundle import load_bundle, load_default_bundle  # noqa: E402
from vqblur.export.testing import TINY_V4_AUDIO, TINY_V4_MODEL  # noqa: E402

from tests.model_checks import check_graphs_match_the_model, edited_bundle, export_tiny_bundle  # noqa: E402


@pytest.fixture(scope="module")
def v4(tmp_path_factory):
    return export_tiny_bundle(tmp_path_factory.mktemp("v4"), audio=TINY_V4_AUDIO, **TINY_V4_MODEL)


def test_v4_manifest_and_bundle_fields(v4):
    _, bundle = v4
    b = load_bundle(bundle)
    m = b.manifest
    assert (m["n_fft"], m["hop"], m["synthesis_len"], m["window"]) == (1280, 80, 320, "asym_sqrt_hann")
    assert (m["model_bins"], m["row_points"], m["rows"], m["latency_samples"]) == (640, 160, 20, 399)
    assert (b.n_fft, b.synthesis_len, b.row_points, b.model_bins, b.latency_samples) == (1280, 320, 160, 640, 399)
    assert b.asymmetric and b.synthesis_samples == 320 and b.n_bins == 641
    # the rows' edges: the log warp from 0 Hz to the top model bin (639 x 37.5 Hz)
    e = b.row_edges_hz()
    f_max = 639 * 48000 / 1280
    assert np.allclose(e, warp_hz(np.arange(21) / 20, 1000.0, f_max))
    assert e[0] == 0 and abs(e[-1] - 23962.5) < 1e-6 and 170 < e[1] < 180 and 3900 < e[10] < 4100
    # the graphs take and give [1, F, model_bins]
    import onnx

    enc = onnx.load(str(b.encoder_path))
    dims = [d.dim_value for d in enc.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 2, 640]
    dec = onnx.load(str(b.decoder_path))
    assert [d.dim_value for d in dec.graph.output[0].type.tensor_type.shape.dim][1:] == [2, 640]


def test_v4_graphs_match_the_model(v4):
    check_graphs_match_the_model(*v4)


@pytest.mark.parametrize("changes, words", [
    ({"window": "sqrt_hann_periodic"}, "asymmetric framing: its window is 'asym_sqrt_hann'"),
    ({"synthesis_len": 0, "latency_samples": 1359}, "'asym_sqrt_hann', which needs an asymmetric 'synthesis_len'"),
    ({"synthesis_len": None, "latency_samples": 1359}, "needs an asymmetric 'synthesis_len'"),
    ({"window": "hann"}, "supports 'sqrt_hann_periodic' and 'asym_sqrt_hann'"),
    ({"latency_samples": 1359}, "'latency_samples' is 1359, but the framing .* gives 399"),
    ({"synthesis_len": 300}, "multiple of 'hop'"),
    ({"synthesis_len": 2000}, "exceeds 'n_fft'"),
    ({"row_points": 700}, "'row_points' 700 must lie between"),
])
def test_inconsistent_v4_manifests_are_refused(v4, tmp_path, changes, words):
    _, bundle = v4
    with pytest.raises(BundleError, match=words):
        load_bundle(edited_bundle(bundle, tmp_path, **changes))


def test_the_shipped_v3_bundle_loads_unchanged():
    b = load_default_bundle()
    assert "synthesis_len" not in b.manifest and "row_points" not in b.manifest
    assert (b.synthesis_len, b.row_points, b.model_bins, b.latency_samples) == (0, 160, 160, 399)
    assert not b.asymmetric and b.synthesis_samples == 320
    assert b.manifest["window"] == "sqrt_hann_periodic"
    e = b.row_edges_hz()
    assert abs(e[-1] - 159 * 150.0) < 1e-6 and 170 < e[1] < 180
