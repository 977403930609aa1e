"""Encode a corpus into codemaps with a trained checkpoint (for Naive Bayes fitting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vqblur.training.checkpoint import load_checkpoint
from vqblur.training.config import Config
from vqblur.training.features import log_magnitude
from vqblur.training.model import VQVAE


MAPS = ("micro", "macro")


def encode_clip(model: VQVAE, cfg: Config, audio: np.ndarray, map_name: str = "micro") -> np.ndarray:
    """audio float32 [n] -> codes int64 [rows, columns] of one codemap (the streaming framing:
    left-padded): ``"micro"`` = the first micro level [rows, C], ``"macro"`` = the macro map
    [rows / macro_factor, C]."""
    if map_name not in MAPS:
        raise ValueError(f"map must be one of {MAPS}, got {map_name!r}")
    if map_name == "macro" and not model.macro_factor:
        raise ValueError("this model has no macro map")
    rows = model.rows_macro if map_name == "macro" else cfg.rows
    lm = log_magnitude(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None], cfg.audio)
    T = lm.shape[2] - lm.shape[2] % cfg.audio.frames_per_column
    if T == 0:
        return np.zeros((rows, 0), dtype=np.int64)
    codes = model.encode_all(lm[:, :, :T])
    grid = codes.macro[0] if map_name == "macro" else codes.micro[0, 0]
    return grid.numpy().astype(np.int64)


def _clips(cfg: Config, split: str, limit: int | None):
    """The clips of the checkpoint's data source and split (``mix``: every group for train,
    the GM renders for valid/test)."""
    from vqblur.training.data.clips import subset
    from vqblur.training.data.corpus import load_corpus

    source = cfg.data.source
    render = {"workers": cfg.data.workers}
    if split == "train" and source == "mix":
        from vqblur.training.data.mix import load_mix

        groups, _, _, _ = load_mix(cfg)
        return subset([c for g in groups for c in g], limit, cfg.train.seed)
    if source == "mix":
        source = "gm"
    if split == "train":
        render["count"] = cfg.data.train_count
    clips, _ = load_corpus(source, cfg.data.path or None, split, cfg.audio.sample_rate,
                           limit=limit, seed=cfg.train.seed, render_kwargs=render)
    return clips


def encode_corpus(checkpoint_path: str | Path, split: str, limit: int | None = None,
                  progress: bool = True, map_name: str = "micro") -> list[np.ndarray]:
    """-> one codemap [rows, columns] int64 per clip of the checkpoint's data source and `split`."""
    model, cfg, _ = load_checkpoint(checkpoint_path)
    clips = _clips(cfg, split, limit)
    iterator = clips
    if progress:
        from vqblur.common.progress import progress_iter

        iterator = progress_iter(clips, desc=f"encode {split}", unit="clip")
    with torch.no_grad():
        return [encode_clip(model, cfg, clip.audio, map_name) for clip in iterator]
