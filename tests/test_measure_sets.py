"""The bench's evaluation sets: the GM test split read, rendered, or replaced by a synthetic
set labelled not comparable (and never checked against targets); the real-recording test set."""

from __future__ import annotations

import numpy as np
import pytest

from vqblur.measure import sets
from vqblur.measure.targets import check_targets

SR = 48000


@pytest.fixture
def no_split(tmp_path, monkeypatch):
    monkeypatch.setattr(sets, "gm_split_dir", lambda: tmp_path / "none" / "audio")
    monkeypatch.setattr(sets, "bench_render_root", lambda: tmp_path / "bench-eval")
    return tmp_path


def test_split_on_disk_is_read(tmp_path, monkeypatch):
    import soundfile as sf

    d = tmp_path / "nsynth-gm-test" / "audio"
    d.mkdir(parents=True)
    for i, amp in enumerate((0.01, 0.5, 0.1)):
        sf.write(d / f"c{i}.wav", (amp * np.ones(SR // 10)).astype(np.float32), SR)
    monkeypatch.setattr(sets, "gm_split_dir", lambda: d)
    s = sets.gm_test_set(SR, 2, render=False)
    assert s.comparable and len(s.clips) == 2
    assert [n for n, _ in s.clips] == ["c1.wav", "c2.wav"]  # the loudest first


def test_rendered_when_missing(no_split):
    import soundfile as sf

    calls = []

    def fake_render(root, count, sr, progress):
        calls.append((root, count, sr))
        a = root / "nsynth-gm-test" / "audio"
        a.mkdir(parents=True)
        for i in range(count):
            sf.write(a / f"r{i}.wav", (0.1 * np.ones(SR // 10)).astype(np.float32), sr)
        return a

    s = sets.gm_test_set(SR, 2, render_count=3, renderer=fake_render)
    assert calls == [(no_split / "bench-eval", 3, SR)]
    assert s.comparable and len(s.clips) == 2 and "rendered by the bench" in s.source


def test_fallback_is_labelled_and_not_checked(no_split):
    def broken(*a):
        raise OSError("libfluidsynth.so.3: cannot open shared object file")

    s = sets.gm_test_set(SR, 2, renderer=broken)
    assert not s.comparable and len(s.clips) == 2
    assert "NOT comparable" in s.title and "NOT comparable" in s.source
    assert "libfluidsynth" in s.note
    off = sets.gm_test_set(SR, 1, render=False)
    assert not off.comparable and "--no-render" in off.note
    # a bench result holding that set checks no quality target against it
    r = {"latency_ms": {"measured": 8.3}, "rtf": {"1": 0.1}, "columns": {"p99_over_duration": 0.2},
         "bundle_mb": 3.0, "quality": {"codec_setting": "default", "sets": {
             "gm_test": {"comparable": False, "clips": 2, "by_setting": {"default": {"sc_db": -13.6, "lsd_db": 15.9}}},
             "real": {"comparable": True, "clips": 3, "by_setting": {"default": {"sc_db": -11.0, "lsd_db": 3.3,
                                                                                 "level_change_db": -2.0}}}}}}
    t = check_targets(r)
    assert not any("gm_test" in k for k in t)
    assert t["sc_db[real]"]["ok"] is False and t["level_change_db[real]"]["ok"] is False


def test_real_recordings_when_installed():
    from vqblur.common.recordings import test_set

    if not test_set(1):
        pytest.skip("sonic-pi-samples is not installed")
    s = sets.real_set(SR, 2)
    assert s.key == "real" and s.comparable and len(s.clips) == 2
    assert all(a.dtype == np.float32 and a.ndim == 1 and len(a) > 0 for _, a in s.clips)
    assert all(n.startswith("sonic-pi-samples/") for n, _ in s.clips)


def test_real_set_missing_is_empty(monkeypatch):
    import vqblur.common.recordings as rec

    monkeypatch.setattr(rec, "test_set", lambda limit=None: [])
    s = sets.real_set(SR)
    assert s.clips == [] and "not installed" in s.source


def test_render_gm_test_with_fluidsynth(tmp_path):
    """The bench's own render of the GM test split (2 clips, no progress bar)."""
    from pathlib import Path

    if not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").is_file():
        pytest.skip("timgm6mb-soundfont is not installed")
    try:
        audio = sets.render_gm_test(tmp_path / "bench-eval", 2, SR, False)
    except (ImportError, OSError) as exc:
        pytest.skip(f"fluidsynth unavailable: {exc}")
    wavs = sorted(Path(audio).glob("*.wav"))
    assert len(wavs) == 2
    clips = sets.load_clips(audio, SR, 2)
    assert all(np.abs(a).max() > 1e-3 for _, a in clips)
