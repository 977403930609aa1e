"""The ``mix`` data source: General MIDI renders from two soundfonts plus packaged recordings.

Groups (``data.mix_weights`` gives the share of training segments drawn from each):

1. FluidR3 GM renders (the ``gm`` source's train split, ``data.train_count`` examples);
2. renders from a second soundfont (``data.second_soundfont``, default MuseScore General,
   ``data.second_count`` examples), cached in ``nsynth-gm-train-<soundfont stem>``;
3. the *train* split of the packaged recordings (:mod:`vqblur.common.recordings`: sonic-pi-samples
   and hydrogen-drumkits; whole files of the test split are never loaded here).

Validation stays the GM valid split (held-out programs), as for the ``gm`` source.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from vqblur.common.errors import UserError

from .clips import Clip, LoadReport
from .corpus import SegmentSampler, default_data_root, load_corpus


def load_recordings(split: str, sample_rate: int) -> tuple[list[Clip], LoadReport]:
    """The packaged recordings of one split, mono at ``sample_rate`` (unreadable files skipped)."""
    from vqblur.common.recordings import list_recordings

    from .folder import read_mono, warn_skipped

    recs = list_recordings(split)
    if not recs:
        raise UserError("no packaged recordings found: install sonic-pi-samples and hydrogen-drumkits "
                        "(bash scripts/setup.sh does)")
    clips, skipped = [], []
    for r in recs:
        try:
            audio, sr, ch = read_mono(r.path, sample_rate)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
            warn_skipped(r.path, exc)
            skipped.append(str(r.path))
            continue
        clips.append(Clip(name=r.name, audio=audio, meta={"path": str(r.path), "package": r.package}))
    return clips, LoadReport(loaded=len(clips), skipped=len(skipped), skipped_files=skipped)


class MixSampler:
    """Segments drawn from several clip groups with fixed weights (one seeded generator)."""

    def __init__(self, groups: Sequence[Sequence[Clip]], n_samples: int, seed: int = 0,
                 *, weights: Sequence[float]):
        if len(groups) != len(weights):
            raise ValueError("one weight per group")
        w = np.asarray(weights, np.float64)
        keep = [i for i, g in enumerate(groups) if len(g) and w[i] > 0]
        if not keep:
            raise UserError("no audio to sample segments from (empty corpus)")
        self.rng = np.random.default_rng(seed)
        self.samplers = [SegmentSampler(groups[i], n_samples, self.rng) for i in keep]
        self.p = w[keep] / w[keep].sum()
        self.n_samples = n_samples

    def sample(self, batch_size: int) -> np.ndarray:
        """-> float32 ``[batch_size, n_samples]``."""
        which = self.rng.choice(len(self.samplers), size=batch_size, p=self.p)
        out = np.empty((batch_size, self.n_samples), np.float32)
        for g, sampler in enumerate(self.samplers):
            rows = np.flatnonzero(which == g)
            if rows.size:
                out[rows] = sampler.sample(rows.size)
        return out

    __call__ = sample


def load_mix(cfg):
    """-> (groups, report, valid clips, sampler factory) as ``train._load_data`` returns."""
    from . import render_gm

    d = cfg.data
    sr, seed = cfg.audio.sample_rate, cfg.train.seed
    root = Path(d.path).expanduser() if d.path else default_data_root()
    gm, rep_gm = load_corpus("gm", root, "train", sr, seed=seed,
                             render_kwargs={"count": d.train_count, "workers": d.workers})
    groups: list[list[Clip]] = [gm, [], []]
    loaded, skipped = rep_gm.loaded, rep_gm.skipped
    sf2 = Path(d.second_soundfont)
    if d.mix_weights[1] > 0:
        if not sf2.is_file():
            raise UserError(f"second soundfont {sf2} not found (Debian: apt-get install musescore-general-soundfont)")
        from .nsynth import load_nsynth

        out = render_gm.render_split(root, "train", count=d.second_count, seed=seed + 7, sample_rate=sr,
                                     workers=d.workers, soundfont=sf2, tag=sf2.stem)
        groups[1], rep = load_nsynth(out, "train", sr)
        loaded, skipped = loaded + rep.loaded, skipped + rep.skipped
    if d.mix_weights[2] > 0:
        groups[2], rep = load_recordings("train", sr)
        loaded, skipped = loaded + rep.loaded, skipped + rep.skipped
    valid, _ = load_corpus("gm", root, "valid", sr, limit=cfg.train.eval_examples, seed=seed,
                           render_kwargs={"workers": d.workers})
    factory = functools.partial(MixSampler, weights=list(d.mix_weights))
    return groups, LoadReport(loaded=loaded, skipped=skipped), valid, factory
