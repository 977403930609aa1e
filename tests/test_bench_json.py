"""`vqblur bench --quick` on the toy bundle: every documented key exists with sane values.

Benchmarks are not timed tests: nothing here asserts a speed, only that the measurements are
there, consistent (p50 <= p99 <= max, measured latency = declared on a pure-delay-at-zone-0
engine) and labelled (energy method and source). The bench runs once, in a subprocess, so the
test also checks that it never imports torch.
"""

from __future__ import annotations

import json
import os
import math
import subprocess
import sys

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle

_RUN = r"""
import sys
from vqblur.cli import main
rc = main(sys.argv[1:])
print("TORCH_IMPORTED", "torch" in sys.modules)
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    root = make_toy_bundle(d / "toy")
    audio = d / "audio"
    audio.mkdir()
    import soundfile as sf

    t = np.arange(24000) / 24000.0  # 1 s at 24 kHz: the bench resamples to the bundle's rate
    sf.write(audio / "tone.wav", (0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-2 * t)).astype(np.float32), 24000)
    out = d / "bench.json"
    empty = d / "empty-data"  # no GM test split on disk: with --no-render, the synthetic fallback
    empty.mkdir()
    r = subprocess.run(
        [sys.executable, "-c", _RUN, "bench", "--bundle", str(root), "--quick", "--quiet",
         "--json", str(out), "--blocks", "64,512", "--audio", str(audio), "--no-render"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "VQBLUR_DATA": str(empty)},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(out.read_text()), r.stdout


def test_prints_table_and_no_torch(bench):
    res, stdout = bench
    assert "latency declared / measured" in stdout
    for row in ("per column, us", "inside onnxruntime run / Python share", "MACs per column enc / dec",
                "block 128", "440 Hz sine level change at -24/-12/-3 dBFS", "blur strength in / out of zone", "targets missed"):
        assert row in stdout, row
    assert "host stalls while busy-waiting" in stdout
    assert "NOT comparable" in stdout  # the synthetic fallback (--no-render) says so
    assert "TORCH_IMPORTED False" in stdout


def test_top_level(bench):
    res, _ = bench
    assert res["vqblur_bench_version"] == 2
    assert res["host"]["onnxruntime"]
    assert res["settings"]["quick"] is True
    assert len(res["bundles"]) == 1
    assert res["host_stalls"]["seconds"] == 1.0 and "longest_ms" in res["host_stalls"]


def test_latency(bench):
    b = bench[0]["bundles"][0]
    assert b["latency_samples"]["declared"] == 399
    assert abs(b["latency_samples"]["measured"] - 399) <= 3
    assert b["latency_ms"]["declared"] == pytest.approx(399 / 48, rel=1e-9)
    assert abs(b["latency_ms"]["measured"] - b["latency_ms"]["declared"]) < 0.1
    j = b["jitter_ms"]
    assert j["std"] >= 0 and j["range"] >= 0
    assert len(b["latency_measurements_samples"]) >= 3
    # broadband bursts through the toy model come out exactly D later
    assert b["latency_by_excitation_samples"]["noise"] == 399
    # the DSP-only engine is a pure delay: no jitter at all
    base = b["baseline_dsp"]
    assert base["latency_samples"]["measured"] == 399
    assert base["jitter_ms"]["std"] == 0.0


def test_compute(bench):
    b = bench[0]["bundles"][0]
    assert set(b["rtf"]) == {"1"}
    assert b["rtf"]["1"] > 0
    for B in ("64", "512"):
        k = b["blocks"][B]
        assert k["block_ms"] == pytest.approx(int(B) / 48, rel=1e-9)
        assert 0 < k["block_ms_p50"] <= k["block_ms_p99"] <= k["block_ms_max"]
        assert 0 <= k["deadline_misses"] <= k["blocks"]
        assert len(k["times_ms"]) == k["blocks"]
    c = b["columns"]
    assert c["column_samples"] == 160
    assert 0 < c["column_ms_p50"] <= c["column_ms_p99"] <= c["column_ms_max"]
    # deadline blocks are always measured, over deadline_seconds
    assert b["blocks"]["128"]["audio_seconds"] == pytest.approx(2.0, abs=0.01)
    u = b["per_column_us"]
    assert u["total"] == pytest.approx(sum(u[p] for p in ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")))
    assert u["encoder"] > 0 and u["decoder"] > 0
    o = b["ort_share"]
    assert o["ort_run_us"] is None or 0 < o["ort_run_us"] < o["total_us"]
    m = b["macs_per_column"]
    assert m["encoder"] == 0 and m["decoder"] == 0  # the toy graphs multiply nothing
    assert b["baseline_dsp"]["per_column_us"]["total"] > 0
    br = b["breakdown"]
    parts = ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")
    assert all(br[p] >= 0 for p in parts)
    assert sum(br[p] for p in parts) == pytest.approx(1.0, abs=1e-6)
    assert br["encoder"] > 0 and br["decoder"] > 0 and br["stft"] > 0


def test_baseline_ratio(bench):
    b = bench[0]["bundles"][0]
    base = b["baseline_dsp"]
    assert base["rtf"] > 0
    # the model's engine (timing knobs) against the DSP-only one, both streaming in turn
    by = b["rtf_by_setting"]
    assert base["rtf"] == by["dsp_rtf"] and base["rtf_ratio"] == by["ratio_to_dsp"]["detail=1"]
    assert base["rtf_runs"] == by["dsp_runs"]
    assert base["model_share"] == pytest.approx(1.0 - 1.0 / base["rtf_ratio"])
    assert base["model_share"] < 1 and "in turn" in base["rtf_method"]


def test_memory_energy(bench):
    b = bench[0]["bundles"][0]
    assert 10 < b["peak_rss_mb"] < 2000
    assert b["memory"]["torch_imported"] is False
    assert b["memory"]["runtime_rss_mb"] <= b["peak_rss_mb"]
    assert 0 < b["bundle_mb"] < 20
    assert b["energy_j_per_audio_s"] > 0
    assert b["energy_method"] in ("measured", "estimated")
    assert b["energy_source"]


def test_quality_nb_curve_training(bench):
    b = bench[0]["bundles"][0]
    q = b["quality"]
    lab = q["codec_setting"]
    assert lab in q["settings"]
    gm = q["sets"]["gm_test"]
    assert gm["comparable"] is False and "NOT comparable" in gm["source"]
    g = gm["by_setting"][lab]
    assert g["clips"] >= 1 and math.isfinite(g["sc_db"]) and math.isfinite(g["lsd_db"])
    assert math.isfinite(g["lsd_db_floor100"]) and math.isfinite(g["level_change_db"])
    qa = q["sets"]["audio"]["by_setting"][lab]
    assert qa["clips"] == 1 and math.isfinite(qa["sc_db"]) and math.isfinite(qa["lsd_db"])
    if q["sets"]["real"]["clips"]:  # sonic-pi-samples installed
        r = q["sets"]["real"]["by_setting"][lab]
        assert r["clips"] == 2 and b["headline_set"] == "real" and b["sc_db"] == r["sc_db"]
        assert "sc_db[real]" in b["targets"] and "sc_db[gm_test]" not in b["targets"]
    sine = q["sine_440"][lab]
    assert set(sine["by_dbfs"]) == {"-24", "-12", "-3"}
    assert sine["level_change_db"] in sine["by_dbfs"].values()
    nb = b["nb"]["heldout"]
    # the toy table is uniform: exactly log K nats, no better than the prior
    assert nb["nll_nats"] == pytest.approx(np.log(256), abs=1e-3)
    assert nb["unigram_nll_nats"] == pytest.approx(np.log(256), abs=1e-3)
    assert 0 <= nb["top1"] <= nb["top5"] <= 1
    curve = b["blur_curve"]
    assert len(curve) >= 3
    z0 = [p for p in curve if p["zone_size"] == 0.0][0]
    assert z0["lsd_db"] == pytest.approx(0.0, abs=1e-6) and z0["codes_changed"] == 0.0
    big = max(curve, key=lambda p: p["zone_size"])
    assert big["codes_changed"] > 0.5 and big["lsd_db"] > 1.0
    tc = b["training_cost"]
    assert "co2e_g" in tc and tc["grid_g_co2e_per_kwh"] > 0
    assert set(b["targets"]) >= {"latency_ms", "rtf_1_thread", "peak_rss_mb", "deadline_misses_64",
                                 "deadline_misses_128", "sine_440_db"}
    st = b["blur_strength"][lab]
    assert [p["zone_size"] for p in st] == [p["zone_size"] for p in curve if p["temperature"] == 0.5]
    z0 = [p for p in st if p["zone_size"] == 0.0][0]
    assert z0["inside_db"] is None and z0["outside_db"] == 0.0  # zone 0: no bands inside, nothing changed
    quarter = [p for p in st if p["zone_size"] == 0.25][0]
    # the toy codec's random codes reach +50 dB and drive the limiter: no in/out contrast to
    # expect here (test_measure_blur_strength checks it on the shipped bundle)
    assert quarter["inside_db"] > 1.0 and math.isfinite(quarter["outside_db"])
    assert [p for p in st if p["zone_size"] == 1.0][0]["outside_db"] is None  # every row is inside
