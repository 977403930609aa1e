"""export -> load_bundle -> Engine: the bundle verifies (every hash), carries every manifest
field of docs/ARCHITECTURE.md, and the engine runs it; a Naive Bayes table that does not fit
the model is refused by export with a message naming the file and the array."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.engine.bundle import load_bundle  # noqa: E402
from vqblur.common.errors import BundleError, UserError  # noqa: E402
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.testing import (harmonic_signal, make_nb_table, make_tiny_checkpoint,  # noqa: E402
                                   uniform_nb_table)

MANIFEST_KEYS = ("format", "format_version", "created", "sample_rate", "n_fft", "hop", "window",
                 "log_eps", "model_bins", "frames_per_column", "rows", "codebook_size",
                 "latency_samples", "normalisation", "encoder", "decoder", "nb", "precision",
                 "files", "training")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    ckpt = make_tiny_checkpoint(root / "run")
    (root / "nb").mkdir()
    nb = make_nb_table(root / "nb" / "nb_table.npz", rows=20, K=32)
    (root / "nb" / "nb_eval.json").write_text(json.dumps({"top1": 0.5, "loglik": -2.0}))
    return ckpt, nb, export_bundle(ckpt, nb, root / "bundle")


def test_manifest_fields_and_hashes(made):
    ckpt, nb, bundle = made
    b = load_bundle(bundle)  # verifies every sha256
    m = b.manifest
    for key in MANIFEST_KEYS:
        assert key in m, key
    assert set(m["files"]) == {"encoder.onnx", "decoder.onnx", "nb_table.npz"}
    assert (b.rows, b.codebook_size, b.frames_per_column, b.model_bins) == (20, 32, 2, 160)
    assert b.latency_samples == 399 and m["precision"] == "fp32"
    assert len(m["normalisation"]["mean"]) == 160 and len(m["normalisation"]["std"]) == 160
    assert m["training"]["config"]["model"]["channels"] == [8, 12, 16]
    assert m["training"]["metrics"]["summary"] == {"steps": 1, "tiny": True}
    assert m["nb"]["evaluation"] == {"top1": 0.5, "loglik": -2.0}
    assert (bundle / "nb_table.npz").read_bytes() == nb.read_bytes()


def test_engine_runs_the_bundle(made):
    from vqblur.engine.core import Engine, Params

    _, _, bundle = made
    b = load_bundle(bundle)
    x = harmonic_signal(0.5, 48000, seed=7)
    eng = Engine(b, Params(zone_size=0.0), channels=1, seed=0)
    assert eng.latency_samples == 399
    y = eng.process(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.abs(y[1000:]).max() > 1e-4  # the model produces sound, not silence
    eng.set_params(zone_size=0.5, temperature=0.7)
    y2 = eng.process(x)
    assert y2.shape == x.shape and np.isfinite(y2).all()


def test_altered_graph_is_refused(made, tmp_path):
    import shutil

    _, _, bundle = made
    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    p = copy / "encoder.onnx"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(BundleError, match=r"encoder\.onnx.*sha256"):
        load_bundle(copy)


@pytest.mark.parametrize("rows,K,what", [(19, 32, "log_row"), (20, 31, "log_prior")])
def test_wrong_shape_nb_table_is_refused(made, tmp_path, rows, K, what):
    ckpt, _, _ = made
    bad = uniform_nb_table(tmp_path / "bad_nb.npz", rows=rows, K=K)
    out = tmp_path / "out"
    with pytest.raises(BundleError, match=rf"bad_nb\.npz.*'{what}' has shape"):
        export_bundle(ckpt, bad, out)
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_nb_metadata_mismatch_and_missing_table_are_refused(made, tmp_path):
    ckpt, _, _ = made
    bad = tmp_path / "nb.npz"
    uniform_nb_table(bad, rows=20, K=32)
    with np.load(bad) as z:
        arrays = dict(z)
    arrays["rows"] = np.int64(21)
    np.savez(bad, **arrays)
    with pytest.raises(BundleError, match=r"nb\.npz.*rows = 21"):
        export_bundle(ckpt, bad, tmp_path / "out")
    with pytest.raises(BundleError, match=r"missing\.npz.*not found"):
        export_bundle(ckpt, tmp_path / "missing.npz", tmp_path / "out")


def test_non_bundle_folder_is_not_overwritten(made, tmp_path):
    ckpt, nb, _ = made
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        export_bundle(ckpt, nb, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_export_prints_size_and_parity(made, tmp_path, capsys):
    import soundfile as sf

    from vqblur.cli import main

    ckpt, nb, _ = made
    wav = tmp_path / "clip.wav"
    sf.write(wav, harmonic_signal(2.0, 48000, seed=11), 48000)
    out = tmp_path / "cli_bundle"
    rc = main(["export", str(ckpt.parent), "--nb", str(nb), "--out", str(out),
               "--audio", str(wav), "--seconds", "2"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "MB" in text and "max abs error" in text and "PASS" in text
    m = load_bundle(out).manifest
    assert m["export"]["parity"]["passed"] and m["export"]["parity"]["max_abs_err_logmag"] <= 1e-4
    # re-export into the same bundle folder replaces it
    assert main(["export", str(ckpt), "--nb", str(nb), "--out", str(out), "--no-parity"]) == 0
    load_bundle(out)
    # user mistakes: one line, exit code 2
    assert main(["export", str(tmp_path / "nope.pt"), "--nb", str(nb), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
