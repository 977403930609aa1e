"""The one entry point the trainer uses: :func:`load_corpus` and :class:`SegmentSampler`.

>>> clips, report = load_corpus("gm", None, "train", 48000)         # renders once, then cached
>>> sampler = SegmentSampler(clips, n_samples=48000, seed=0)
>>> batch = sampler.sample(16)                                     # float32 [16, 48000]

Sources
    ``"gm"``      NSynth-like corpus rendered from General MIDI soundfonts
                  (:mod:`.render_gm`), cached under ``path`` (default ``$VQBLUR_DATA`` or
                  ``~/.cache/vqblur/data``). ``render_kwargs`` go to
                  :func:`.render_gm.render_split` (``count``, ``workers``, ``gain``, ...).
    ``"nsynth"``  a real NSynth download (:mod:`.nsynth`); ``path`` is required.
    ``"folder"``  any folder of audio files (:mod:`.folder`); ``path`` is required,
                  ``split`` is ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from vqblur.common.errors import UserError

from .clips import Clip, LoadReport

SOURCES = ("gm", "nsynth", "folder")


def default_data_root() -> Path:
    env = os.environ.get("VQBLUR_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vqblur" / "data"


def load_corpus(
    source: str,
    path: str | Path | None,
    split: str,
    sample_rate: int = 48000,
    *,
    limit: int | None = None,
    seed: int = 0,
    render_kwargs: dict | None = None,
) -> tuple[list[Clip], LoadReport]:
    """Load (rendering first if needed) a corpus -> (clips, report).

    For ``"gm"``, ``render_kwargs["count"]`` defaults to ``limit`` when given, else to
    the split's default size (train 2000, valid 200, test 200); ``seed`` seeds the render
    (which examples are drawn) unless ``render_kwargs["seed"]`` is given. A split already
    rendered with at least ``limit`` examples is read as it is: a quick run with a small
    ``limit`` (``vqblur fit-nb --limit 30``) takes its clips from it instead of rendering the
    shared split again smaller (the bench measures the GM test split on disk).
    """
    if source not in SOURCES:
        raise UserError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    if source == "gm":
        from . import render_gm
        from .nsynth import load_nsynth

        kw = dict(render_kwargs or {})
        root = Path(path).expanduser() if path else default_data_root()
        if "count" not in kw:
            have = render_gm.rendered_count(root, split, kw.get("tag", ""))
            if limit is not None and have is not None and have >= limit:
                kw["count"] = have  # never render a split again smaller than it is
            else:
                kw["count"] = limit if limit is not None else render_gm.DEFAULT_COUNTS.get(split)
        kw.setdefault("seed", seed)
        d = render_gm.render_split(root, split, sample_rate=sample_rate, **kw)
        return load_nsynth(d, split, sample_rate, limit=limit, seed=seed)
    if path is None:
        raise UserError(f"data source {source!r} needs a path")
    if source == "nsynth":
        from .nsynth import load_nsynth

        return load_nsynth(path, split, sample_rate, limit=limit, seed=seed)
    from .folder import load_folder

    return load_folder(path, sample_rate, limit=limit, seed=seed)


class SegmentSampler:
    """Random fixed-length segments from clips, preferring non-silent parts.

    Each row: a clip drawn uniformly, then a start drawn uniformly; a segment whose RMS is
    below ``min_rms_db`` dBFS is redrawn (new clip and start) up to ``retries`` times,
    after which the loudest candidate is kept. Clips shorter than ``n_samples`` are
    zero-padded at the end. Deterministic for a seed (or a given ``np.random.Generator``).
    """

    def __init__(self, clips: Sequence[Clip] | Sequence[np.ndarray], n_samples: int,
                 seed: int | np.random.Generator = 0, *, min_rms_db: float = -60.0,
                 retries: int = 8):
        if n_samples < 1:
            raise ValueError("n_samples must be positive")
        self.audio = [np.asarray(c.audio if isinstance(c, Clip) else c, dtype=np.float32)
                      for c in clips]
        self.audio = [a for a in self.audio if a.size > 0]
        if not self.audio:
            raise UserError("no audio to sample segments from (empty corpus)")
        self.n_samples = int(n_samples)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.min_ms = float(10 ** (min_rms_db / 10))  # mean square threshold
        self.retries = int(retries)

    def _draw(self) -> np.ndarray:
        a = self.audio[int(self.rng.integers(len(self.audio)))]
        n = self.n_samples
        if a.size <= n:
            out = np.zeros(n, np.float32)
            out[: a.size] = a
            return out
        s = int(self.rng.integers(a.size - n + 1))
        return a[s:s + n]

    def sample(self, batch_size: int) -> np.ndarray:
        """-> float32 ``[batch_size, n_samples]``."""
        out = np.empty((batch_size, self.n_samples), np.float32)
        inv_n = 1.0 / self.n_samples
        for b in range(batch_size):
            best, best_ms = None, -1.0
            for _ in range(self.retries + 1):
                seg = self._draw()
                ms = float(np.dot(seg, seg)) * inv_n
                if ms > best_ms:
                    best, best_ms = seg, ms
                if ms >= self.min_ms:
                    break
            out[b] = best
        return out

    __call__ = sample
