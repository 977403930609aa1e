"""At a file rate other than the model's, `vqblur process` states the engine's latency (samples
at the model rate, ms) and the figure at the file's rate, and why they differ (resampling)."""

import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.latency import describe_latency, latency_figures


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy"))


def _process(toy, src, out):
    return subprocess.run([sys.executable, "-m", "vqblur", "process", str(src), str(out),
                           "--bundle", str(toy)], capture_output=True, text=True, timeout=180)


def test_resampled_file_prints_both_figures(toy, tmp_path):
    sr = 22050
    src = tmp_path / "in.wav"
    t = np.arange(int(0.3 * sr)) / sr
    sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t), sr)
    r = _process(toy, src, tmp_path / "out.wav")
    assert r.returncode == 0, r.stderr
    line = next(s for s in r.stderr.splitlines() if s.strip().startswith("latency"))
    m = re.search(r"(\d+) samples = (\d+\.\d\d) ms at the model's 48000 Hz; (\d+) samples = "
                  r"(\d+\.\d\d) ms at 22050 Hz \(the resampling filters .* add (\d+\.\d\d) ms\)", line)
    assert m, line
    d, d_ms, io, io_ms, extra = int(m[1]), float(m[2]), int(m[3]), float(m[4]), float(m[5])
    assert d == 399 and d_ms == pytest.approx(8.31, abs=0.005)
    assert io_ms == pytest.approx(1000 * io / sr, abs=0.005)
    assert io_ms > d_ms and extra == pytest.approx(io_ms - d_ms, abs=0.011)


def test_model_rate_file_prints_one_figure(toy, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(4800, np.float32), 48000)
    r = _process(toy, src, tmp_path / "out.wav")
    assert r.returncode == 0, r.stderr
    line = next(s for s in r.stderr.splitlines() if s.strip().startswith("latency"))
    assert "399 samples = 8.31 ms at the model's 48000 Hz; compensated" in line
    assert "resampl" not in line


def test_figures_of_a_resampled_engine(toy):
    from vqblur.engine.bundle import load_bundle
    from vqblur.engine.resample import make_engine

    eng = make_engine(load_bundle(toy), sample_rate=44100)
    f = latency_figures(eng)
    assert (f["model_samples"], f["model_rate"], f["io_rate"]) == (399, 48000, 44100)
    assert f["io_samples"] == eng.latency_samples
    assert "at 44100 Hz" in describe_latency(eng)
