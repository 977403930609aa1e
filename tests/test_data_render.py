"""The GM soundfont renderer: deterministic, NSynth format, held-out instruments, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fluidsynth")

from vqblur.training.data import render_gm  # noqa: E402
from vqblur.training.data.corpus import load_corpus  # noqa: E402

FLUID = render_gm.default_soundfont("train")
TIMGM = render_gm.default_soundfont("test")
needs_sf2 = pytest.mark.skipif(not (FLUID.is_file() and TIMGM.is_file()),
                               reason="Debian soundfonts not installed")

NSYNTH_KEYS = {
    "note_str", "pitch", "velocity", "instrument", "instrument_str", "instrument_family",
    "instrument_family_str", "instrument_source_str", "sample_rate", "qualities_str", "kind",
}


def _render(root: Path, split: str, count: int = 10, **kw) -> Path:
    kw.setdefault("workers", 1)
    return render_gm.render_split(root, split, count, progress=False, **kw)


def _examples(d: Path) -> dict:
    return json.loads((d / "examples.json").read_text())


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory) -> Path:
    return _render(tmp_path_factory.mktemp("gm"), "train", 10, seed=3)


@needs_sf2
def test_same_seed_same_bytes_for_any_worker_count(train_dir, tmp_path):
    again = _render(tmp_path, "train", 10, seed=3, workers=2)
    assert (again / "examples.json").read_bytes() == (train_dir / "examples.json").read_bytes()
    names = sorted(p.name for p in (train_dir / "audio").glob("*.wav"))
    assert names == sorted(p.name for p in (again / "audio").glob("*.wav"))
    for n in names:
        assert (again / "audio" / n).read_bytes() == (train_dir / "audio" / n).read_bytes(), n


@needs_sf2
def test_other_seed_other_examples(train_dir, tmp_path):
    other = _render(tmp_path, "train", 10, seed=4)
    assert set(_examples(other)) != set(_examples(train_dir))


@needs_sf2
def test_examples_json_is_nsynth_format(train_dir):
    ex = _examples(train_dir)
    assert len(ex) == 10
    kinds = {v["kind"] for v in ex.values()}
    assert kinds == {"note", "drum", "phrase"}  # 7 notes, 1 drum hit, 2 phrases
    for key, v in ex.items():
        assert NSYNTH_KEYS <= set(v), key
        assert v["note_str"] == key
        assert key == f"{v['instrument_str']}-{v['pitch']:03d}-{v['velocity']:03d}"
        assert v["instrument_source_str"] == "synthetic"
        assert v["qualities_str"] == []
        assert v["sample_rate"] == 48000
        assert v["instrument_family_str"] == render_gm.FAMILIES[v["instrument_family"]]
        info = sf.info(str(train_dir / "audio" / f"{key}.wav"))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            48000, 1, 4 * 48000, "PCM_16")
        audio, _ = sf.read(str(train_dir / "audio" / f"{key}.wav"), dtype="float32")
        assert np.abs(audio).max() > 10 ** (render_gm.SILENCE_DBFS / 20)  # no silent renders
    assert len(list((train_dir / "audio").glob("*.wav"))) == 10


@needs_sf2
def test_note_is_held_then_released(train_dir):
    ex = _examples(train_dir)
    key = next(k for k, v in ex.items() if v["kind"] == "note")
    audio, sr = sf.read(str(train_dir / "audio" / f"{key}.wav"), dtype="float32")
    assert np.sqrt(np.mean(audio[: sr // 2] ** 2)) > 1e-4  # sounding from the start


def test_valid_holds_out_whole_instruments():
    train = set(render_gm.split_programs("train"))
    valid = set(render_gm.split_programs("valid"))
    assert valid and not train & valid and train | valid == set(range(128))
    assert not set(render_gm.split_kits("train")) & set(render_gm.split_kits("valid"))
    for seed in (0, 1):
        plan = render_gm.plan_candidates("valid", seed, 3.0)
        assert {s.instrument for s in plan["note"]} <= valid
        assert {s.extra["drum_kit"] for s in plan["drum"]} <= set(render_gm.HOLDOUT_KITS)
        for i in range(20):  # phrases, duets included, use held-out programs only
            assert set(plan["phrase"](i).extra["programs"]) <= valid


@needs_sf2
def test_valid_split_instruments_disjoint_from_train(train_dir, tmp_path):
    valid = _render(tmp_path, "valid", 10, seed=3)
    progs = lambda ex: {p for v in ex.values() if v["kind"] != "drum" for p in v["programs"]}  # noqa: E731
    kits = lambda ex: {v["drum_kit"] for v in ex.values() if v["kind"] == "drum"}  # noqa: E731
    assert progs(_examples(valid)) and not progs(_examples(valid)) & progs(_examples(train_dir))
    assert not kits(_examples(valid)) & kits(_examples(train_dir))
    assert json.loads((valid / "params.json").read_text())["soundfont"] == FLUID.name


@needs_sf2
def test_test_split_uses_timgm6mb(tmp_path):
    d = _render(tmp_path, "test", 4)
    assert d.name == "nsynth-gm-test"
    assert json.loads((d / "params.json").read_text())["soundfont"] == "TimGM6mb.sf2"
    assert len(_examples(d)) == 4


@needs_sf2
def test_rerun_reuses_cache_and_new_params_rerender(tmp_path):
    d = _render(tmp_path, "train", 3)
    wav = next((d / "audio").glob("*.wav"))
    stamp = wav.stat().st_mtime_ns
    assert _render(tmp_path, "train", 3) == d
    assert wav.stat().st_mtime_ns == stamp  # reused, not rendered again
    _render(tmp_path, "train", 4)
    assert len(_examples(d)) == 4
    assert json.loads((d / "params.json").read_text())["count"] == 4


@needs_sf2
def test_load_corpus_gm_renders_then_loads(tmp_path):
    clips, report = load_corpus("gm", tmp_path, "train", 48000, limit=3,
                                render_kwargs={"workers": 1, "progress": False})
    assert (report.loaded, report.skipped) == (3, 0)
    assert all(c.audio.dtype == np.float32 and c.audio.shape == (4 * 48000,) for c in clips)
    assert all(c.meta["note_str"] == c.name for c in clips)


@needs_sf2
def test_a_small_limit_reads_a_larger_split_instead_of_shrinking_it(tmp_path):
    """``load_corpus(limit=n)`` on a split already rendered with more examples takes n of them
    and leaves the split as it is (the bench measures the GM test split on disk, so a quick
    ``fit-nb --limit`` must not change it); a split rendered smaller than the limit grows."""
    d = _render(tmp_path, "test", 6)
    stamp = {w.name: w.stat().st_mtime_ns for w in (d / "audio").glob("*.wav")}
    kw = {"render_kwargs": {"workers": 1, "progress": False}}
    clips, _ = load_corpus("gm", tmp_path, "test", 48000, limit=3, **kw)
    assert len(clips) == 3
    assert json.loads((d / "params.json").read_text())["count"] == 6
    assert {w.name: w.stat().st_mtime_ns for w in (d / "audio").glob("*.wav")} == stamp
    assert render_gm.rendered_count(tmp_path, "test") == 6
    clips, _ = load_corpus("gm", tmp_path, "test", 48000, limit=8, **kw)
    assert len(clips) == 8 and render_gm.rendered_count(tmp_path, "test") == 8
    assert render_gm.rendered_count(tmp_path, "valid") is None
