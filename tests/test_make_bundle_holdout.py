"""The folder reader's holdout and cuts (vqblur.training.data.own_folder), on synthetic files:
whole files fixed by the sha1 of their names, about 15 % and never over 25 % of the audio, never
every file; the tail of every file when no whole file fits; the validation excerpts and the
training pieces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from vqblur.training.data.own_folder import (FileInfo, FolderScan, HOLDOUT_MAX_SHARE, choose_holdout,
                                             excerpts, pieces_of, refusal, validation_tails)

SR = 1000


def _file(name: str, seconds: float) -> FileInfo:
    a = np.full(int(seconds * SR), 0.1, np.float32)
    return FileInfo(name=name, path=Path(name), audio=a, source_rate=SR, channels=1, format="WAV",
                    seconds=seconds, active_seconds=seconds, peak_dbfs=-20.0)


def test_whole_files_by_name_order():
    files = [_file(f"take {i:02d}.wav", 60) for i in range(20)]
    h = choose_holdout(files)
    assert not h.tail
    held = sum(f.seconds for f in files if f.name in h.names)
    assert 0.15 * 1200 <= held <= HOLDOUT_MAX_SHARE * 1200
    order = sorted(files, key=lambda f: int.from_bytes(hashlib.sha1(f.name.encode()).digest()[:8], "big"))
    assert set(h.names) == {f.name for f in order[:len(h.names)]}  # the first names in sha1 order
    # fixed by name: the same files whatever order they were listed in, and with other files around
    assert choose_holdout(list(reversed(files))).names == h.names


def test_a_big_file_is_skipped_not_held_out():
    files = [_file("huge.wav", 600)] + [_file(f"s{i}.wav", 30) for i in range(10)]
    h = choose_holdout(files)
    assert "huge.wav" not in h.names and h.names
    train, valid = h.split(files)
    assert sum(a.size for _, a in valid) <= HOLDOUT_MAX_SHARE * sum(f.audio.size for f in files)


def test_too_few_files_hold_out_every_files_tail():
    files = [_file("a.wav", 50), _file("b.wav", 40)]
    h = choose_holdout(files)
    assert h.tail > 0 and not h.names and "last" in h.note
    train, valid = h.split(files)
    assert len(train) == len(valid) == 2
    for (_, t), (_, v), f in zip(train, valid, files):
        assert t.size + v.size == f.audio.size and abs(v.size / f.audio.size - h.tail) < 0.01


def test_one_file_is_never_all_held_out():
    h = choose_holdout([_file("only.wav", 100)])
    assert h.tail > 0


def test_excerpts_and_pieces():
    pieces = [("a", np.arange(40 * SR, dtype=np.float32)), ("b", np.arange(7 * SR, dtype=np.float32))]
    ex = excerpts(pieces, SR, 5.0, 30.0)
    assert len(ex) == 6 and all(a.size == 5 * SR for _, a in ex[:-1])
    assert {n.split("@")[0] for n, _ in ex} == {"a", "b"}
    cut = pieces_of(np.zeros(95 * SR, np.float32), SR, 10.0)
    assert sum(c.size for c in cut) == 95 * SR and max(c.size for c in cut) <= 11 * SR
    assert len(pieces_of(np.zeros(12 * SR, np.float32), SR, 10.0)) == 1


def test_validation_tails_are_apart_from_training():
    """Validation (checkpoint choice, stopping) is the last share of each training piece, not
    trained on; pieces too short for a tail train whole; all too short: validate on training."""
    pieces = [("a", np.arange(60 * SR, dtype=np.float32)), ("b", np.arange(2 * SR, dtype=np.float32))]
    fit, tails = validation_tails(pieces, 0.1, min_seconds=0.5, sample_rate=SR)
    assert [n for n, _ in fit] == ["a", "b"] and len(tails) == 1 and tails[0][0].startswith("a")
    assert fit[0][1].size == 54 * SR and tails[0][1].size == 6 * SR
    assert fit[0][1][-1] + 1 == tails[0][1][0]  # the tail follows where training stops
    assert fit[1][1].size == 2 * SR  # 0.2 s tail < 0.5 s: trains whole
    fit2, tails2 = validation_tails([("c", np.zeros(SR, np.float32))], 0.1, min_seconds=0.5, sample_rate=SR)
    assert fit2[0][1].size == SR and tails2[0][0].endswith("(trained on)")


def test_refusal_counts_only_non_silent_audio():
    scan = FolderScan(root=Path("/x"), sample_rate=SR, files=[_file("a.wav", 40)], seen=1)
    assert refusal(scan) is None
    scan.files[0].active_seconds = 20.0
    assert "only 20.0 s" in refusal(scan)
