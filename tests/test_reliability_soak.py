"""Soak, short version: two minutes of audio (audio minutes, not wall minutes) through the
Engine in random block sizes 1..4096 with random knob automation (scripts/soak.py, toy bundle).

* no NaN/Inf and nothing above 0 dBFS in the output;
* memory does not grow: the RSS slope after the warm-up stays under a bound loose enough for
  allocator noise over a short run, tight enough to catch a per-block leak (one 4096-sample
  float64 buffer kept per block would be ~50 MB per audio minute here); the count of live
  Python objects does not climb;
* same seed -> the same output, bit for bit (sha256); another seed -> another output.

The 30-minute run is ``python scripts/soak.py --minutes 30 --toy --repeat 2 --json OUT``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.toy_bundle import make_toy_bundle

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "scripts" / "soak.py"


def _soak_module():
    spec = importlib.util.spec_from_file_location("vqblur_soak", SOAK)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def test_two_minutes_of_audio_no_nan_no_growth(toy, tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "2", "--seed", "5", "--bundle", str(toy),
         "--json", str(out), "--sample-every", "2", "--warmup", "0.3", "--max-slope", "5",
         "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.is_file(), r.stderr
    rep = json.loads(out.read_text())
    run = rep["runs"][0]
    print(f"soak 2 min: wall {run['wall_s']:.1f} s, RTF {run['real_time_factor']:.3f}, "
          f"{run['blocks']} blocks, RSS {run['rss_mb']['start']:.1f} -> {run['rss_mb']['end']:.1f} MB, "
          f"slope {run['rss_mb']['slope_mb_per_audio_min']:+.3f} MB/audio-min, objects "
          f"{run['python_objects']}")
    assert run["audio_s"] == pytest.approx(120.0, abs=1e-3)
    assert run["blocks"] > 1000  # random block sizes, really
    assert run["nonfinite_samples"] == 0
    assert run["samples_over_full_scale"] == 0 and run["max_abs"] <= 1.0
    assert run["max_abs"] > 0.5  # the hot passages did reach the limiter
    assert run["rss_mb"]["slope_mb_per_audio_min"] < 5.0, run["rss_mb"]
    assert run["rss_mb"]["peak"] - run["rss_mb"]["start"] < 30.0, run["rss_mb"]
    assert run["python_objects"]["slope_per_audio_min"] < 200, run["python_objects"]
    assert rep["pass"], rep["failures"]
    assert r.returncode == 0, r.stderr


def test_same_seed_same_output_other_seed_other_output(toy):
    soak = _soak_module()
    from vqblur.engine.bundle import load_bundle

    b = load_bundle(toy)
    a1 = soak.run_once(b, minutes=0.2, seed=11, sample_every=3)
    a2 = soak.run_once(b, minutes=0.2, seed=11, sample_every=3)
    c = soak.run_once(b, minutes=0.2, seed=12, sample_every=3)
    assert a1["blocks"] > 100
    assert a1["sha256"] == a2["sha256"]
    assert a1["sha256"] != c["sha256"]
    for r in (a1, a2, c):
        assert r["nonfinite_samples"] == 0 and r["samples_over_full_scale"] == 0


def test_same_seed_same_output_stereo_resampled(toy):
    soak = _soak_module()
    from vqblur.engine.bundle import load_bundle

    b = load_bundle(toy)
    runs = [soak.run_once(b, minutes=0.05, seed=4, channels=2, rate=44100, sample_every=1)
            for _ in range(2)]
    assert runs[0]["sha256"] == runs[1]["sha256"]
    assert runs[0]["nonfinite_samples"] == 0 and runs[0]["samples_over_full_scale"] == 0


def test_cli_repeat_reports_determinism(toy, tmp_path):
    out = tmp_path / "s.json"
    r = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.05", "--seed", "2", "--bundle", str(toy),
         "--repeat", "2", "--json", str(out), "--max-slope", "1000", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["deterministic"] is True and len(set(rep["hashes"])) == 1 and rep["pass"]
    bad = subprocess.run([sys.executable, str(SOAK), "--bundle", str(tmp_path / "none"),
                          "--minutes", "0.01", "--quiet"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "soak: error:" in bad.stderr and "Traceback" not in bad.stderr


def test_same_seed_same_output_across_processes(toy, tmp_path):
    """Two separate processes (fresh onnxruntime sessions, fresh numpy RNGs) agree bit for bit."""
    hashes = []
    for i in range(2):
        out = tmp_path / f"p{i}.json"
        r = subprocess.run(
            [sys.executable, str(SOAK), "--minutes", "0.05", "--seed", "9", "--bundle", str(toy),
             "--channels", "2", "--json", str(out), "--max-slope", "1000", "--quiet"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr
        hashes.append(json.loads(out.read_text())["hashes"][0])
    assert hashes[0] == hashes[1]
