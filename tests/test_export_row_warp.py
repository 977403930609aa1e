"""Codec v3's row warp (model.row_warp = "log"): the fixed frequency warp in front of the encoder
and its inverse after the decoder is part of the exported step graphs, so streaming them with
onnxruntime still gives the PyTorch model's offline output (the export's own fast code paths
once skipped the warp: parity caught it); the manifest says which rows the bundle has, and the
engine reads their frequency edges from it."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.common.freqaxis import row_edges_hz, row_warp_matrices  # noqa: E402
from vqblur.engine.bundle import load_bundle  # noqa: E402
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.parity import check_parity  # noqa: E402
from vqblur.export.testing import TINY_V2, harmonic_signal, make_nb_table, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def warped(tmp_path_factory):
    root = tmp_path_factory.mktemp("warp")
    ckpt = make_tiny_checkpoint(root / "run", **{**TINY_V2, "row_warp": "log"})
    nb = make_nb_table(root / "nb_table.npz", rows=20, K=32)
    nbm = make_nb_table(root / "nb_macro.npz", rows=5, K=32)
    return ckpt, export_bundle(ckpt, nb, root / "bundle", nb_macro_path=nbm)


def test_warped_graphs_match_the_model(warped):
    ckpt, bundle = warped
    p = check_parity(ckpt, bundle, harmonic_signal(2.0, 48000, seed=2), seconds=2.0)
    assert p["max_abs_err_logmag"] <= 1e-4
    assert p["codes_differ_not_ties"] == 0, p
    assert p["passed"]


def test_manifest_names_the_warp_and_the_engine_reads_it(warped):
    _, bundle = warped
    b = load_bundle(bundle)
    assert b.manifest["row_warp"] == "log" and b.row_warp == "log"
    e = b.row_edges_hz()
    assert e[0] == 0 and 150 < e[1] < 200 and 3900 < e[10] < 4100  # log rows: narrow at the bottom
    lin = row_edges_hz(20, 48000, 320, 160, "linear")
    assert np.allclose(np.diff(lin), 1200)


def test_warp_matrices_keep_a_flat_spectrum_and_low_bins():
    ana, syn = row_warp_matrices(48000, 320, 160)
    assert np.allclose(ana.sum(1), 1, atol=1e-6) and np.allclose(syn.sum(1), 1, atol=1e-6)
    flat = np.full(160, -3.0, np.float32)
    assert np.allclose(syn @ (ana @ flat), flat, atol=1e-5)
    # below ~2 kHz the warped points are denser than the bins: the round trip mostly keeps each bin;
    # near Nyquist they are sparser, and it averages neighbours
    rt = syn @ ana
    assert np.all(np.diag(rt)[:12] > 0.8) and np.all(np.diag(rt)[-20:] < 0.6)  # high bins: smoothed
