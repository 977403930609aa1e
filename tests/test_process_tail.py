"""`vqblur process --tail SECONDS`: OUT is IN plus that much of what the engine still rings
with after IN ends (fed silence), as a reverb renders its tail. The first part is exactly the
output without the tail; with the smear knob up, a one-shot's smeared energy lies in the tail
(a file that stops at the hit keeps it only with --tail); bad values are one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from vqblur.cli import main

SR = 44100  # through the resampler to the model's 48 kHz and back


@pytest.fixture(scope="module")
def hit(tmp_path_factory):
    """A 60 ms one-shot (noise and a 220 Hz tone, both decaying), the file ending at the hit."""
    n = int(0.06 * SR)
    t = np.arange(n) / SR
    x = np.random.default_rng(0).normal(0, 1, n) * np.exp(-t / 0.015) + np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.02)
    path = tmp_path_factory.mktemp("hit") / "hit.wav"
    sf.write(path, (0.7 * x / np.abs(x).max()).astype(np.float32), SR, subtype="FLOAT")
    return path


def _energy_db(y: np.ndarray) -> float:
    return 10 * np.log10(np.sum(np.square(y, dtype=np.float64)))


def test_the_tail_is_appended_and_holds_the_smear(hit, tmp_path):
    x, _ = sf.read(hit)
    outs = {}
    for tail in (0, 1):
        out = tmp_path / f"out{tail}.wav"
        assert main(["process", str(hit), str(out), "--smear", "1", "--zone-size", "1", "--tail", str(tail),
                     "--quiet"]) == 0
        outs[tail], sr = sf.read(out)
        assert sr == SR
    assert len(outs[0]) == len(x) and len(outs[1]) == len(x) + SR
    np.testing.assert_allclose(outs[1][: len(x)], outs[0], atol=1e-6)
    lost, kept = _energy_db(outs[0]) - _energy_db(x), _energy_db(outs[1]) - _energy_db(x)
    assert abs(kept) <= 1.5 and kept >= lost + 3.0, (lost, kept)  # measured -1.0 / -5.2 dB
    early, late = (np.sqrt(np.mean(outs[1][a:a + SR // 5] ** 2)) for a in (len(x), len(outs[1]) - SR // 5))
    assert 20 * np.log10(early / late) >= 15.0  # rings down (about 30 dB a second)


def test_bad_tail_values_are_one_line_errors(hit, tmp_path):
    for bad in ("-1", "nan", "601", "long"):
        r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(hit), str(tmp_path / "o.wav"),
                            "--tail", bad], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "--tail" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "o.wav").exists()


def test_the_summary_says_when_the_smear_tail_is_cut(hit, tmp_path):
    def summary(*extra):
        r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(hit), str(tmp_path / "o.wav"), *extra],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stderr

    assert "--tail 1 keeps" in summary("--smear", "1")
    assert "--tail 1 keeps" not in summary("--smear", "1", "--tail", "0.5")
    assert "--tail 1 keeps" not in summary("--zone-size", "0.3")
