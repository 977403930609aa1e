"""The audio the bench measures quality on, per set (see docs/MEASURING.md):

``real``
    the real-recording test set, :func:`vqblur.common.recordings.test_set`: whole sonic-pi-samples
    files held out from any training (39 files, 76 s when the package is installed).
``gm_test``
    the GM test split: General MIDI renders with the TimGM6mb soundfont, which training never
    uses. Read from ``<data root>/nsynth-gm-test`` when `vqblur render-data --split test` has
    rendered it; otherwise the bench renders a small one itself (:data:`RENDER_COUNT` clips,
    into ``<data root>/bench-eval``, with a progress bar). When it cannot (no fluidsynth, no
    soundfont, no ``train`` extra), it falls back to synthetic signals, labelled **not
    comparable**, and no target is checked against them.
``audio``
    ``vqblur bench --audio DIR``: any folder of audio files.

Every set is a list of ``(name, mono float32 [n] at the bundle's rate)`` clips.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vqblur.measure.harness import synth_audio

#: GM test clips the bench renders when the split is not on disk
RENDER_COUNT = 24
SET_KEYS = ("real", "gm_test")


@dataclass
class EvalSet:
    """One evaluation set: its clips and where they came from."""

    key: str  # "real" | "gm_test" | "audio"
    title: str  # short label for tables
    source: str  # where the clips came from (a sentence)
    clips: list[tuple[str, np.ndarray]] = field(default_factory=list)
    comparable: bool = True  # False: synthetic fallback, no targets checked
    note: str = ""

    def describe(self, sr: int) -> dict:
        return {"key": self.key, "title": self.title, "source": self.source, "clips": len(self.clips),
                "seconds": float(sum(len(a) for _, a in self.clips) / sr), "comparable": self.comparable,
                "note": self.note}


def _read(path: Path, sr: int) -> np.ndarray:
    from vqblur.training.data.folder import read_mono

    return read_mono(path, sr)[0]


def load_clips(audio_dir, sr: int, limit: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Up to ``limit`` mono clips from a folder at ``sr`` (torch-free loader of vqblur.training.data)."""
    from vqblur.training.data.folder import load_folder

    clips, _ = load_folder(audio_dir, sr, limit=limit, seed=seed)
    return [(c.name, c.audio) for c in clips]


def real_set(sr: int, limit: int | None = None) -> EvalSet:
    """The held-out packaged recordings (all of them unless ``limit``); empty when not installed."""
    from vqblur.common.recordings import SONIC_PI_ROOT, test_set

    recs = test_set(limit)
    title = "real recordings"
    if not recs:
        return EvalSet("real", title, f"not installed ({SONIC_PI_ROOT} missing: "
                       "scripts/setup.sh installs sonic-pi-samples)", [], True,
                       "the real-recording test set is not on this machine")
    clips = []
    for r in recs:
        try:
            clips.append((r.name, _read(r.path, sr)))
        except Exception:  # noqa: BLE001 - one unreadable file does not stop the bench
            continue
    return EvalSet("real", title, f"sonic-pi-samples test split ({len(clips)} whole files held out "
                   "from training; vqblur.common.recordings.test_set)", clips)


def gm_split_dir() -> Path:
    """Where `vqblur render-data --split test` puts the GM test split's audio."""
    from vqblur.training.data.corpus import default_data_root

    return default_data_root() / "nsynth-gm-test" / "audio"


def bench_render_root() -> Path:
    from vqblur.training.data.corpus import default_data_root

    return default_data_root() / "bench-eval"


def _loudest(d: Path, sr: int, limit: int, seed: int) -> list[tuple[str, np.ndarray]]:
    clips = load_clips(d, sr, limit * 3, seed)
    # prefer clips with sound in them (drums and quiet notes have long silent tails)
    clips.sort(key=lambda c: -float(np.sqrt(np.mean(c[1].astype(np.float64) ** 2))))
    return clips[:limit]


def render_gm_test(root: Path, count: int, sr: int, progress: bool) -> Path:
    """Render ``count`` GM test-split clips (TimGM6mb) under ``root``; -> the audio folder."""
    from vqblur.training.data.render_gm import render_split

    out = render_split(root, "test", count, sample_rate=sr, workers=1, progress=progress)
    return Path(out) / "audio"


def gm_test_set(sr: int, limit: int, seed: int = 0, render: bool = True,
                render_count: int = RENDER_COUNT, log: Callable[[str], None] = lambda s: None,
                renderer: Callable[[Path, int, int, bool], Path] | None = None) -> EvalSet:
    """The GM test split: on disk, else rendered here, else synthetic (labelled not comparable)."""
    title = "GM test split"
    why = ""
    try:
        d = gm_split_dir()
        if d.is_dir() and any(d.glob("*.wav")):
            return EvalSet("gm_test", title, f"GM test split, TimGM6mb ({d})", _loudest(d, sr, limit, seed))
        if render:
            root = bench_render_root()
            log(f"the GM test split is not at {d}: rendering {render_count} test clips (TimGM6mb) into {root}")
            audio = (renderer or render_gm_test)(root, max(render_count, limit), sr, sys.stderr.isatty())
            if any(Path(audio).glob("*.wav")):
                return EvalSet("gm_test", title, f"GM test split, TimGM6mb, {render_count} clips rendered by the "
                               f"bench ({audio})", _loudest(Path(audio), sr, limit, seed))
            why = "the render produced no audio"
        else:
            why = "rendering was turned off (--no-render)"
    except Exception as exc:  # noqa: BLE001 - no fluidsynth / soundfont / train extra: fall back
        why = f"it could not be rendered here ({type(exc).__name__}: {exc})"
    clips = [(f"synthetic-{i}", synth_audio(2.0, sr, seed + 100 + i)) for i in range(limit)]
    return EvalSet("gm_test", "synthetic (NOT comparable)",
                   "synthetic signals: NOT comparable with the README's figures; no targets are checked",
                   clips, comparable=False,
                   note=f"the GM test split is not on disk and {why}; `vqblur render-data --split test` renders it")


def folder_set(audio_dir, sr: int, limit: int, seed: int = 0) -> EvalSet:
    """``--audio DIR``: a seeded subset of the folder's audio files."""
    return EvalSet("audio", f"--audio {Path(audio_dir).name}", str(audio_dir),
                   load_clips(audio_dir, sr, limit, seed))


def excerpt(s: EvalSet, seconds: float, sr: int) -> EvalSet:
    """The same set with every clip cut to its first ``seconds``."""
    n = int(seconds * sr)
    return EvalSet(s.key, s.title, s.source, [(k, a[:n]) for k, a in s.clips], s.comparable, s.note)
