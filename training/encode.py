"""Encode a corpus into codemaps with a trained checkpoint (for Naive Bayes fitting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vqblur.training.checkpoint import load_checkpoint
from vqblur.training.config import Config
from vqblur.training.features import log_magnitude
from vqblur.training.model import VQVAE


def encode_clip(model: VQVAE, cfg: Config, audio: np.ndarray) -> np.ndarray:
    """audio float32 [n] -> codes int64 [rows, columns] (the streaming framing: left-padded)."""
    lm = log_magnitude(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None], cfg.audio)
    T = lm.shape[2] - lm.shape[2] % cfg.audio.frames_per_column
    if T == 0:
        return np.zeros((cfg.rows, 0), dtype=np.int64)
    return model.encode(lm[:, :, :T])[0].numpy().astype(np.int64)


def encode_corpus(checkpoint_path: str | Path, split: str, limit: int | None = None,
                  progress: bool = True) -> list[np.ndarray]:
    """-> one codemap [rows, columns] int64 per clip of the checkpoint's data source and `split`."""
    from vqblur.training.data.corpus import load_corpus

    model, cfg, _ = load_checkpoint(checkpoint_path)
    render = {"workers": cfg.data.workers}
    if split == "train":
        render["count"] = cfg.data.train_count
    clips, _ = load_corpus(cfg.data.source, cfg.data.path or None, split, cfg.audio.sample_rate,
                           limit=limit, seed=cfg.train.seed, render_kwargs=render)
    iterator = clips
    if progress:
        from vqblur.progress import progress_iter

        iterator = progress_iter(clips, desc=f"encode {split}", unit="clip")
    with torch.no_grad():
        return [encode_clip(model, cfg, clip.audio) for clip in iterator]
