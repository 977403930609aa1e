"""`vqblur process` renders a file through the engine: same rate, length, channels; automation."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main

SR = 44100


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    t = np.arange(int(0.3 * SR)) / SR
    x = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1100 * t + 1)], 1)
    wav16 = d / "in16.wav"
    sf.write(wav16, x, SR, subtype="PCM_16")
    wavf = d / "inf.wav"
    sf.write(wavf, x, SR, subtype="FLOAT")
    return wav16, wavf


def _run(*args):
    return main(["process", *map(str, args), "--quiet"])


def test_output_keeps_rate_length_channels_subtype(toy, stereo, tmp_path):
    wav16, _ = stereo
    out = tmp_path / "out.wav"
    assert _run(wav16, out, "--bundle", toy, "--zone-size", "0") == 0
    i, o = sf.info(wav16), sf.info(out)
    assert (o.samplerate, o.channels, o.frames, o.subtype) == (SR, 2, i.frames, "PCM_16")
    y, _ = sf.read(out)
    assert np.isfinite(y).all() and np.max(np.abs(y)) > 0.05


def test_json_automation_and_latency_compensation(toy, stereo, tmp_path):
    _, wavf = stereo
    x, _ = sf.read(wavf, dtype="float32")
    # mix 0 all along: the output is the dry input, aligned (latency compensated)
    dry = tmp_path / "dry.json"
    dry.write_text(json.dumps([{"time": 0.0, "mix": 0.0}]))
    out = tmp_path / "dry.wav"
    assert _run(wavf, out, "--bundle", toy, "--automation", dry) == 0
    y, sr = sf.read(out, dtype="float32")
    assert sr == SR and y.shape == x.shape
    assert np.max(np.abs(y[200:-200] - x[200:-200])) < 2e-3
    # wet for the first 0.1 s, then a ramp to dry by 0.15 s: the end is the input again
    ramp = tmp_path / "ramp.json"
    ramp.write_text(json.dumps([{"time": 0.0, "mix": 1.0}, {"time": 0.1, "mix": 1.0},
                                {"time": 0.15, "mix": 0.0}]))
    out2 = tmp_path / "ramp.wav"  # detail 0: the wet signal is the toy codec's, not the input
    assert _run(wavf, out2, "--bundle", toy, "--automation", ramp, "--detail", "0") == 0
    z, _ = sf.read(out2, dtype="float32")
    head = slice(int(0.02 * SR), int(0.09 * SR))
    tail = slice(int(0.22 * SR), len(x) - 200)
    assert np.max(np.abs(z[head] - x[head])) > 0.02  # wet: the toy codec changes the sound
    assert np.max(np.abs(z[tail] - x[tail])) < 2e-3


def test_block_size_does_not_change_the_output(toy, stereo, tmp_path):
    _, wavf = stereo
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert _run(wavf, a, "--bundle", toy, "--block", "64", "--mix", "0.7") == 0
    assert _run(wavf, b, "--bundle", toy, "--block", "3000", "--mix", "0.7") == 0
    ya, _ = sf.read(a, dtype="float32")
    yb, _ = sf.read(b, dtype="float32")
    assert np.max(np.abs(ya - yb)) <= 1e-6


def test_mono_48k_flac_to_wav_with_preset(toy, tmp_path):
    x = (0.3 * np.sin(2 * np.pi * 300 * np.arange(9000) / 48000)).astype(np.float32)
    src = tmp_path / "m.flac"
    sf.write(src, x, 48000, subtype="PCM_24")
    out = tmp_path / "m.wav"
    assert _run(src, out, "--bundle", toy, "--preset", "transparent") == 0
    o = sf.info(out)
    assert (o.samplerate, o.channels, o.frames, o.subtype) == (48000, 1, 9000, "PCM_24")


def test_user_errors_are_one_line_exit_2(toy, stereo, tmp_path):
    wav16, _ = stereo
    bad = tmp_path / "bad.toml"
    bad.write_text("[knobs]\nzone = 1\n")
    for args in (["process", str(tmp_path / "none.wav"), str(tmp_path / "o.wav"), "--bundle", str(toy)],
                 ["process", str(wav16), str(tmp_path / "o.wav"), "--bundle", str(toy), "--preset", str(bad)],
                 ["process", str(wav16), str(tmp_path / "o.wav"), "--bundle", str(tmp_path)]):
        r = subprocess.run([sys.executable, "-m", "vqblur", *args], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("vqblur process: error:") and "Traceback" not in r.stderr
