"""The NSynth loader on a tiny generated fixture in NSynth's layout (16 kHz wavs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqblur.common.errors import UserError
from vqblur.training.data.corpus import load_corpus
from vqblur.training.data.nsynth import load_nsynth

SR = 16000


def _entry(inst: str, family: str, fam_id: int, pitch: int, vel: int) -> dict:
    return {
        "note_str": f"{inst}-{pitch:03d}-{vel:03d}", "pitch": pitch, "velocity": vel,
        "instrument": 7, "instrument_str": inst, "instrument_family": fam_id,
        "instrument_family_str": family, "instrument_source": 0,
        "instrument_source_str": "acoustic", "sample_rate": SR,
        "qualities": [0] * 10, "qualities_str": [],
    }


def make_nsynth(root: Path, split: str = "valid", n: int = 3, seconds: float = 0.5,
                missing: int = 0) -> dict:
    d = root / f"nsynth-{split}"
    (d / "audio").mkdir(parents=True)
    ex = {}
    for i in range(n + missing):
        e = _entry("keyboard_acoustic_004", "keyboard", 4, 60 + i, 75)
        ex[e["note_str"]] = e
        if i < n:
            t = np.arange(int(seconds * SR)) / SR
            x = 0.3 * np.sin(2 * np.pi * 440 * 2 ** (i / 12) * t)
            sf.write(str(d / "audio" / f"{e['note_str']}.wav"), x, SR, subtype="PCM_16")
    (d / "examples.json").write_text(json.dumps(ex))
    return ex


def test_loads_and_resamples_16k_to_48k(tmp_path):
    ex = make_nsynth(tmp_path, "valid", n=3, seconds=0.5)
    clips, report = load_nsynth(tmp_path, "valid", 48000)
    assert (report.loaded, report.skipped, report.skipped_files) == (3, 0, [])
    assert [c.name for c in clips] == sorted(ex)
    for c in clips:
        assert c.audio.dtype == np.float32 and c.audio.ndim == 1
        assert c.audio.shape == (24000,)  # 0.5 s at 48 kHz
        assert c.meta["instrument_family_str"] == "keyboard"
        assert c.meta["source_sample_rate"] == SR and c.meta["sample_rate"] == 48000
        assert 0.25 < np.abs(c.audio[1000:-1000]).max() < 0.35  # level kept


def test_resampled_pitch_is_kept(tmp_path):
    make_nsynth(tmp_path, "test", n=1, seconds=1.0)
    (clip,), _ = load_nsynth(tmp_path / "nsynth-test", "test", 48000)  # split folder itself
    spec = np.abs(np.fft.rfft(clip.audio * np.hanning(clip.audio.size)))
    peak_hz = np.argmax(spec) * 48000 / clip.audio.size
    assert abs(peak_hz - 440) < 2


def test_missing_wav_is_skipped_and_counted(tmp_path):
    make_nsynth(tmp_path, "train", n=2, missing=1)
    with pytest.warns(UserWarning, match="keyboard_acoustic_004-062-075.wav"):
        clips, report = load_corpus("nsynth", tmp_path, "train", 48000)
    assert (report.loaded, report.skipped) == (2, 1)
    assert report.skipped_files[0].endswith("keyboard_acoustic_004-062-075.wav")


def test_limit_takes_a_seeded_subset(tmp_path):
    make_nsynth(tmp_path, "train", n=5, seconds=0.1)
    a, _ = load_nsynth(tmp_path, "train", 48000, limit=2, seed=1)
    b, _ = load_nsynth(tmp_path, "train", 48000, limit=2, seed=1)
    assert [c.name for c in a] == [c.name for c in b] and len(a) == 2


def test_missing_split_is_a_user_error(tmp_path):
    make_nsynth(tmp_path, "valid", n=1)
    with pytest.raises(UserError, match="nsynth-train"):
        load_nsynth(tmp_path, "train", 48000)
