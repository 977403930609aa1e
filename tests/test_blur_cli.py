"""`vqblur blur`: an offline zone blur of a file through a bundle (the toy bundle here)."""

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main

SR = 48000


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy")


def _signal(seconds, sr=SR, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    chans = [0.3 * np.sin(2 * np.pi * (300 + 200 * c) * t) + 0.05 * rng.standard_normal(len(t))
             for c in range(channels)]
    return np.stack(chans, axis=1).astype(np.float32)


def _blur(toy, src, dst, *extra):
    return main(["blur", str(src), str(dst), "--bundle", str(toy), "--quiet", *extra])


def test_zone_size_zero_is_the_codec_reconstruction(toy, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(0.5, channels=2), SR, subtype="FLOAT")
    # detail 0: the codec's reconstruction alone (at detail 1 zone 0 is the input itself)
    assert _blur(toy, src, tmp_path / "b0.wav", "--zone-size", "0", "--temperature", "0.9",
                 "--detail", "0") == 0
    assert main(["process", str(src), str(tmp_path / "p0.wav"), "--bundle", str(toy),
                 "--zone-size", "0", "--detail", "0", "--quiet"]) == 0
    y, sr = sf.read(tmp_path / "b0.wav")
    ref, _ = sf.read(tmp_path / "p0.wav")
    x, _ = sf.read(src)
    assert sr == SR and y.shape == x.shape == ref.shape
    assert sf.info(tmp_path / "b0.wav").subtype == "FLOAT"
    np.testing.assert_allclose(y, ref, atol=1e-6)
    assert np.abs(y - x).max() > 1e-3  # the toy codec quantises: not the input itself


@pytest.mark.parametrize("smear", ["0", "1"], ids=["no smear", "smear 1"])
def test_zone_changes_only_its_time_span(toy, tmp_path, smear):
    """Nothing changes before the span; after it, the change releases (blur v2 smooths it,
    70 ms: from the largest change, 70 ms x ln(4.6 / 3e-4) = 0.68 s) and has ended exactly
    0.7 s later. The time smear (``--smear``) follows the span the same way."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(1.5), SR, subtype="FLOAT")
    png = tmp_path / "zone.png"
    common = ["--centre", "0.4", "--temperature", "0.7", "--sweeps", "2", "--smear", smear]
    assert _blur(toy, src, tmp_path / "b0.wav", "--zone-size", "0", *common) == 0
    assert _blur(toy, src, tmp_path / "b.wav", "--time", "0.2:0.4", "--zone-size", "0.3",
                 "--png", str(png), *common) == 0
    assert _blur(toy, src, tmp_path / "b_again.wav", "--time", "0.2:0.4", "--zone-size", "0.3",
                 *common) == 0
    assert _blur(toy, src, tmp_path / "b_seed.wav", "--time", "0.2:0.4", "--zone-size", "0.3",
                 "--seed", "5", *common) == 0
    y0, _ = sf.read(tmp_path / "b0.wav")
    y, _ = sf.read(tmp_path / "b.wav")
    diff = np.abs(y - y0) > 1e-6
    # a column reaches 240 samples back and 159 forward (plus the window's overlap)
    margin = 320 + 160
    assert not diff[: int(0.2 * SR) - margin].any()
    assert not diff[int(1.1 * SR) + margin :].any()
    assert diff[int(0.2 * SR) : int(0.4 * SR)].mean() > 0.5
    assert (sf.read(tmp_path / "b_again.wav")[0] == y).all()  # same seed, same result
    assert (sf.read(tmp_path / "b_seed.wav")[0] != y).any()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_other_rate_keeps_rate_and_length(toy, tmp_path):
    src = tmp_path / "in44.flac"
    x = _signal(0.3, sr=44100)
    sf.write(src, x, 44100, subtype="PCM_24")
    assert _blur(toy, src, tmp_path / "out.flac", "--zone-size", "0.5", "--time", "0.1:") == 0
    info = sf.info(tmp_path / "out.flac")
    assert info.samplerate == 44100 and info.frames == len(x) and info.channels == 1
    assert info.subtype == "PCM_24"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--time", "2:1"], "--time"),
        (["--time", "5:6"], "after the end"),
        (["--neighbourhood", "0:3"], "--neighbourhood"),
    ],
)
def test_user_errors(toy, tmp_path, capsys, args, words):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(0.2), SR)
    assert _blur(toy, src, tmp_path / "o.wav", *args) == 2
    assert words in capsys.readouterr().err


def test_missing_input_and_bad_knob(toy, tmp_path, capsys):
    assert _blur(toy, tmp_path / "nope.wav", tmp_path / "o.wav") == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _blur(toy, tmp_path / "nope.wav", tmp_path / "o.wav", "--zone-size", "1.5")


def test_summary_states_the_temperature_the_sampler_uses(toy, tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(0.2), SR)
    assert main(["blur", str(src), str(tmp_path / "o.wav"), "--bundle", str(toy),
                 "--temperature", "0.7"]) == 0
    assert "temperature 0.7 (T = 1.960)" in capsys.readouterr().err  # T = 4 t^2, as in the engine


def test_the_smear_flag_reaches_the_offline_blur(toy, tmp_path):
    """``--smear 1`` changes the span's sound against ``--smear 0`` (same seed), and nothing
    before the span."""
    src = tmp_path / "in.wav"
    sf.write(src, _signal(1.0), SR, subtype="FLOAT")
    common = ["--time", "0.3:0.6", "--zone-size", "0.5", "--centre", "0.4", "--sweeps", "1"]
    assert _blur(toy, src, tmp_path / "s0.wav", *common, "--smear", "0") == 0
    assert _blur(toy, src, tmp_path / "s1.wav", *common, "--smear", "1") == 0
    y0, _ = sf.read(tmp_path / "s0.wav")
    y1, _ = sf.read(tmp_path / "s1.wav")
    assert np.array_equal(y0[: int(0.3 * SR) - 480], y1[: int(0.3 * SR) - 480])
    assert np.abs(y1 - y0)[int(0.35 * SR): int(0.6 * SR)].max() > 1e-3
