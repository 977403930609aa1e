"""`vqblur make-bundle` refuses a bad folder in one line, exit code 2, and writes nothing: not
--out, not the work folder (fine-tune and palette alike). Also an --out it must not overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from tests.make_bundle_fixtures import make_base


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory.mktemp("mb_base"))


def _wav(path, seconds, sr=44100, amp=0.3, channels=1):
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = (amp * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr)


def _missing(d):
    return d / "nope"


def _a_file(d):
    _wav(d / "one.wav", 40)
    return d / "one.wav"


def _empty(d):
    (d / "f" / "sub").mkdir(parents=True)
    return d / "f"


def _no_audio(d):
    (d / "f").mkdir()
    (d / "f" / "notes.txt").write_text("x")
    (d / "f" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    return d / "f"


def _unreadable(d):
    (d / "f").mkdir()
    (d / "f" / "a.wav").write_bytes(b"RIFF\x00\x00garbage")
    (d / "f" / "b.flac").write_bytes(b"fLaC broken")
    (d / "f" / "c.mp3").write_bytes(b"")
    return d / "f"


def _short(d):
    _wav(d / "f" / "a.wav", 12)
    _wav(d / "f" / "b" / "c.flac", 10, sr=22050)
    return d / "f"


def _silent(d):
    _wav(d / "f" / "a.wav", 20, amp=0.0)
    _wav(d / "f" / "b.wav", 20, amp=1e-5)  # -100 dBFS noise: silence too
    return d / "f"


CASES = {
    "missing": (_missing, "no such folder"),
    "a file": (_a_file, "not a folder"),
    "empty": (_empty, "empty"),
    "no audio files": (_no_audio, "no audio files"),
    "unreadable": (_unreadable, "no readable audio"),
    "too short": (_short, "needs at least 30 s"),
    "silent": (_silent, "silent"),
}


@pytest.mark.parametrize("palette", [False, True], ids=["fine-tune", "palette"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_folder(case, palette, base, tmp_path, capsys):
    from vqblur.cli import main

    make, words = CASES[case]
    folder = make(tmp_path)
    out = tmp_path / "out"
    ckpt, bundle = base
    args = ["make-bundle", str(folder), "--out", str(out), "--base-bundle", str(bundle), "--quiet"]
    args += ["--palette-only"] if palette else ["--base-checkpoint", str(ckpt)]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    cap = capsys.readouterr()
    lines = [ln for ln in (cap.out + cap.err).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("vqblur make-bundle: error: ") and words in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "out.work").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing at all was written


def test_out_that_is_not_a_bundle_is_refused(base, tmp_path, capsys):
    from vqblur.cli import main

    _wav(tmp_path / "f" / "a.wav", 40)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    ckpt, bundle = base
    assert main(["make-bundle", str(tmp_path / "f"), "--out", str(out), "--base-checkpoint", str(ckpt),
                 "--base-bundle", str(bundle), "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "not empty and holds no bundle" in cap.err
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    assert not (tmp_path / "out.work").exists()
