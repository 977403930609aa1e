"""`vqblur demo` (the README's main job) renders, writes its files and measures its latency."""

import re

import numpy as np
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main


def test_demo_writes_outputs_and_reports_matching_latency(tmp_path, capsys):
    bundle = make_toy_bundle(tmp_path / "bundle")
    out = tmp_path / "out"
    assert main(["demo", "--bundle", str(bundle), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    m = re.search(r"declared (\d+) samples .* measured (\d+) samples", text)
    assert m and m.group(1) == m.group(2) == "399"
    assert re.search(r"real time\s+\d+\.\d+ x", text)
    assert re.search(r"energy\s+\d+\.\d+ J per second of audio \((estimated|measured)", text)
    x, sr = sf.read(out / "demo_input.wav")
    for name in ("demo_zone0.wav", "demo_blurred.wav"):
        y, sr_y = sf.read(out / name)
        assert sr_y == sr and len(y) == len(x)
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
        assert np.sqrt(np.mean(y**2)) > 1e-3  # not silent
    assert (out / "demo_spectrogram.png").stat().st_size > 10_000


def test_demo_refuses_missing_input(tmp_path, capsys):
    bundle = make_toy_bundle(tmp_path / "bundle")
    assert main(["demo", "--bundle", str(bundle), "--input", str(tmp_path / "nope.wav"), "--out", str(tmp_path)]) == 2
    assert "input not found" in capsys.readouterr().err
