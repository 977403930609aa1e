"""`vqblur process --png`: the codemap before/after the streaming blur for the whole file, drawn
with `vqblur blur`'s plotter; the picture does not change the audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def _file(path, sr, seconds=1.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 * (c + 1)) * t) for c in range(channels)], 1)
    x += 0.05 * np.random.default_rng(0).standard_normal(x.shape)
    sf.write(path, x, sr, subtype="FLOAT")
    return path


@pytest.mark.parametrize("sr,channels", [(48000, 1), (44100, 2)])
def test_png_of_the_whole_file_and_the_audio_unchanged(toy, tmp_path, capsys, sr, channels):
    import matplotlib.image as mpimg

    src = _file(tmp_path / "in.wav", sr, 1.0, channels)
    args = ["process", str(src), None, "--bundle", str(toy), "--zone-size", "0.4",
            "--temperature", "0.7", "--seed", "3"]
    assert main([a if a else str(tmp_path / "plain.wav") for a in args] + ["--quiet"]) == 0
    capsys.readouterr()
    assert main([a if a else str(tmp_path / "pic.wav") for a in args] + ["--png", str(tmp_path / "grid.png")]) == 0
    err = capsys.readouterr().err
    a, _ = sf.read(tmp_path / "plain.wav")
    b, _ = sf.read(tmp_path / "pic.wav")
    assert np.array_equal(a, b)  # the tap does not change a sample
    img = mpimg.imread(tmp_path / "grid.png")
    assert img.shape[0] > 500 and img.shape[1] > 800
    line = next(ln for ln in err.splitlines() if "codemap picture" in ln)
    changed = int(line.split("(")[1].split(" codes changed")[0])
    assert changed > 100, line


def test_no_blur_no_changes(toy, tmp_path, capsys):
    src = _file(tmp_path / "in.wav", 48000, 0.5)
    assert main(["process", str(src), str(tmp_path / "out.wav"), "--bundle", str(toy), "--zone-size", "0",
                 "--png", str(tmp_path / "grid.png")]) == 0
    err = capsys.readouterr().err
    assert "(0 codes changed by the blur, channel 1)" in err and (tmp_path / "grid.png").stat().st_size > 10000


def test_png_into_a_missing_folder_is_a_user_error(toy, tmp_path, capsys):
    src = _file(tmp_path / "in.wav", 48000, 0.2)
    code = main(["process", str(src), str(tmp_path / "out.wav"), "--bundle", str(toy),
                 "--png", str(tmp_path / "nope" / "grid.png")])
    assert code == 2
    assert "cannot write the picture there" in capsys.readouterr().err
    assert not (tmp_path / "out.wav").exists()
