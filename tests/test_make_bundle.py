"""`vqblur make-bundle` end to end on a tiny folder (mixed formats, rates, channel counts) and a
tiny base model: the fine-tuned bundle, the from-scratch bundle and the palette load and run in
the engine; the card, the holdout and the skipped files are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.make_bundle_fixtures import make_base, make_folder, run_cli


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("make_bundle")
    folder = make_folder(root / "my sounds")
    ckpt, bundle = make_base(root / "base")
    return root, folder, ckpt, bundle


def _engine_runs(bundle_dir, zone: float = 0.3):
    from vqblur.engine.bundle import load_bundle
    from vqblur.engine.core import Engine, Params

    b = load_bundle(bundle_dir)
    eng = Engine(b, Params(zone_size=zone, temperature=0.5, centre=0.5, mix=1.0, bypass=0.0,
                           detail=0.0, scale=0.0), channels=2, seed=0)
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((48000, 2))).astype(np.float32)
    y = np.concatenate([eng.process(x[i:i + 512]) for i in range(0, len(x), 512)])
    assert y.shape == x.shape and np.isfinite(y).all()
    assert np.abs(y).max() > 1e-4  # it makes sound
    return b


def test_fine_tune_end_to_end(setup):
    root, folder, ckpt, base = setup
    out = root / "mine"
    r = run_cli(["make-bundle", str(folder), "--out", str(out), "--minutes", "0.15", "--eval-every", "20",
                 "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"])
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    # what it found: five files, the skipped ones with a reason each, the held-out file
    assert "6 audio file(s)" in text and "MP3" in text and "OGG" in text
    assert "broken.wav:" in text and "silence.wav: silent" in text
    assert "ignored 1 file(s)" in text
    assert "held out (never trained on; the card measures on them)" in text
    assert "whole files, fixed by name" in text
    # validation is the training files' tails, apart from the held-out file the card measures
    assert "validation (chooses the checkpoint and stops training; not trained on)" in text
    # the progress lines carry the validation figure (the card's mel-LSD) and the ETA
    assert "valid mel-LSD" in text and "ETA" in text
    # the card
    for needle in ("== vqblur bundle card", "mel-LSD", "base bundle", "this bundle", "nats/cell",
                   "unigram", "kJ, estimated", f"vqblur live --bundle {out}",
                   f"vqblur process IN.wav OUT.wav --bundle {out}"):
        assert needle in text, needle
    b = _engine_runs(out)
    m = b.manifest
    assert m["make_bundle"]["kind"] == "model"
    assert m["export"]["parity"]["make_bundle_passed"]
    assert set(m["files"]) == {"encoder.onnx", "decoder.onnx", "nb_table.npz", "nb_macro.npz"}
    card = json.loads((out / "card.json").read_text())
    held = card["audio"]["held_out"]
    assert len(held) == 1 and card["audio"]["files"] == 6
    assert card["quality"]["after"]["mel_lsd_db"] > 0 and card["quality"]["before"]["mel_lsd_db"] > 0
    assert card["nb"]["micro"]["full"] is not None and card["nb"]["macro"]["full"] is not None
    assert (out / "card.txt").is_file()
    # the staged audio is gone from the work folder; the run (checkpoints) stays
    work = root / "mine.work"
    # the fine-tune validated its starting weights (step 0) too, by the mel-LSD, and trained
    # with the mel loss term
    records = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] == "eval"]
    assert evals[0]["step"] == 0 and all("mel_lsd_db" in r for r in evals)
    assert any("mel" in r for r in records if r["event"] == "step")
    assert card["training"]["best_step"] in [r["step"] for r in evals]
    assert not (work / "data").exists() and (work / "run" / "model.pt").is_file()
    # the same command again: already made, nothing redone
    r2 = run_cli(["make-bundle", str(folder), "--out", str(out), "--minutes", "0.15", "--eval-every", "20",
                  "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"])
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "already made" in r2.stdout and "== vqblur bundle card" in r2.stdout


def test_holdout_is_fixed_by_name(setup, tmp_path):
    from vqblur.training.data.own_folder import choose_holdout, scan_folder

    _, folder, _, _ = setup
    a = choose_holdout(scan_folder(folder, 48000).files)
    b = choose_holdout(list(reversed(scan_folder(folder, 48000).files)))
    assert a.names == b.names and len(a.names) == 1 and not a.tail


def test_from_scratch(setup):
    root, folder, ckpt, base = setup
    out = root / "scratch"
    r = run_cli(["make-bundle", str(folder), "--out", str(out), "--minutes", "0.05", "--eval-every", "20",
                 "--from-scratch", "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "from scratch" in r.stdout
    _engine_runs(out)


def test_palette_only(setup):
    root, folder, _, base = setup
    out = root / "palette"
    r = run_cli(["make-bundle", str(folder), "--out", str(out), "--palette-only", "--base-bundle", str(base),
                 "--quiet"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "palette only" in r.stdout and "nats/cell" in r.stdout
    b = _engine_runs(out)
    # the codec is the base's, byte for byte; the tables are new
    for f in ("encoder.onnx", "decoder.onnx"):
        assert (out / f).read_bytes() == (base / f).read_bytes()
    assert (out / "nb_table.npz").read_bytes() != (base / "nb_table.npz").read_bytes()
    assert b.manifest["make_bundle"]["kind"] == "palette"
    assert not (root / "palette.work").exists()


def test_torchrun_two_processes(setup):
    """Under torchrun every process trains (DistributedDataParallel, gloo on CPU); rank 0 reads
    the folder, stages the data and finishes the bundle."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.is_file():
        pytest.skip("no torchrun beside this python")
    root, folder, ckpt, base = setup
    out = root / "ddp"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run([str(torchrun), "--nproc-per-node", "2", "-m", "vqblur", "make-bundle", str(folder),
                        "--out", str(out), "--minutes", "0.05", "--eval-every", "20",
                        "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"],
                       capture_output=True, text=True, timeout=300, env=env,
                       cwd=str(Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("== vqblur bundle card") == 1  # rank 0 alone prints and finishes
    summary = json.loads((root / "ddp.work" / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_identical"]
    assert "x 2 processes" in r.stdout
    _engine_runs(out)
