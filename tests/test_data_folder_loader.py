"""The folder loader: mixed formats, rates and channel counts; bad files skipped, named."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqblur.common.errors import UserError
from vqblur.training.data.corpus import load_corpus
from vqblur.training.data.folder import DataWarning, load_folder


def _tone(sr: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.25 * np.sin(2 * np.pi * 330 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def make_folder(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(str(root / "a.wav"), _tone(44100, 0.5, 2), 44100, subtype="PCM_24")
    sf.write(str(root / "sub" / "b.flac"), _tone(22050, 0.5, 1), 22050)
    sf.write(str(root / "sub" / "deeper" / "c.ogg"), _tone(48000, 0.5, 6), 48000,
             format="OGG", subtype="VORBIS")
    sf.write(str(root / "d.wav"), _tone(16000, 1.0, 1).astype(np.float32), 16000,
             subtype="FLOAT")
    (root / "sub" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    (root / "notes.txt").write_text("not audio, ignored")


def test_mixed_formats_rates_channels(tmp_path):
    make_folder(tmp_path)
    with pytest.warns(DataWarning):
        clips, report = load_folder(tmp_path, 48000)
    by_name = {c.name: c for c in clips}
    assert set(by_name) == {"a.wav", "sub/b.flac", "sub/deeper/c.ogg", "d.wav"}
    expect = {"a.wav": 24000, "sub/b.flac": 24000, "sub/deeper/c.ogg": 24000, "d.wav": 48000}
    for name, n in expect.items():
        c = by_name[name]
        assert c.audio.dtype == np.float32 and c.audio.ndim == 1, name
        assert c.audio.shape == (n,), name  # resampled to 48 kHz
        assert 0.2 < np.abs(c.audio[2000:-2000]).max() < 0.3, name  # mixed, not summed
    assert by_name["a.wav"].meta["channels"] == 2
    assert by_name["sub/deeper/c.ogg"].meta["channels"] == 6
    assert by_name["d.wav"].meta["source_sample_rate"] == 16000


def test_corrupt_file_is_skipped_counted_and_named(tmp_path):
    make_folder(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips, report = load_corpus("folder", tmp_path, "train", 48000)
    assert (report.loaded, report.skipped) == (4, 1)
    assert report.skipped_files == [str(tmp_path / "sub" / "broken.wav")]
    msgs = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(msgs) == 1 and str(tmp_path / "sub" / "broken.wav") in msgs[0]


def test_empty_folder_is_a_user_error(tmp_path):
    (tmp_path / "nothing.txt").write_text("x")
    with pytest.raises(UserError, match="no audio files"):
        load_corpus("folder", tmp_path, "train", 48000)


def test_only_unreadable_files_is_a_user_error(tmp_path):
    (tmp_path / "bad.flac").write_bytes(b"fLaC garbage")
    with pytest.warns(DataWarning, match="bad.flac"), pytest.raises(UserError, match="skipped"):
        load_folder(tmp_path, 48000)


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_folder(tmp_path / "nope", 48000)
