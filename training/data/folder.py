"""Load any folder of audio: wav / flac / ogg (and aiff), recursively.

Every file is mixed to mono (mean of its channels) and resampled with soxr to the
requested rate. A file that cannot be read is skipped with a :class:`DataWarning` that
names it, and counted; one bad file never stops a run. An empty data set (no audio files,
or none readable) raises :class:`vqblur.common.errors.UserError`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from vqblur.common.errors import UserError

from .clips import Clip, LoadReport, subset

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff")


class DataWarning(UserWarning):
    """An audio file was skipped (unreadable, empty, ...); the message names it."""


def read_mono(path: str | Path, sample_rate: int) -> tuple[np.ndarray, int, int]:
    """Read ``path`` -> (float32 mono [n] at ``sample_rate``, source rate, source channels).

    Raises on any problem (unreadable, empty, non-finite samples).
    """
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError("no samples")
    channels = data.shape[1]
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ValueError("non-finite samples")
    if sr != sample_rate:
        import soxr

        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr), int(channels)


def warn_skipped(path: str | Path, exc: BaseException) -> None:
    msg = f"skipping unreadable audio file {path}: {type(exc).__name__}: {exc}"
    log.warning(msg)
    warnings.warn(msg, DataWarning, stacklevel=3)


def list_audio_files(root: str | Path,
                     extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    root = Path(root)
    exts = {e.lower() for e in extensions}
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def load_folder(path: str | Path, sample_rate: int = 48000, *, limit: int | None = None,
                seed: int = 0, progress: bool = False):
    """-> (list[Clip], LoadReport). ``limit`` takes a seeded subset of the files first."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"audio folder {root} does not exist")
    files = list_audio_files(root)
    if not files:
        raise UserError(
            f"no audio files in {root} (looked recursively for "
            f"{', '.join(AUDIO_EXTENSIONS)})")
    files = subset(files, limit, seed)
    clips, skipped = [], []
    it = files
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(files, desc="load audio", unit="file")
    for f in it:
        try:
            audio, sr, ch = read_mono(f, sample_rate)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
            warn_skipped(f, exc)
            skipped.append(str(f))
            continue
        name = str(f.relative_to(root)) if f != root else f.name
        clips.append(Clip(name=name, audio=audio,
                          meta={"path": str(f), "source_sample_rate": sr, "channels": ch,
                                "sample_rate": sample_rate}))
    if not clips:
        raise UserError(
            f"no readable audio in {root}: all {len(skipped)} files were skipped "
            f"(first: {skipped[0]})")
    return clips, LoadReport(loaded=len(clips), skipped=len(skipped), skipped_files=skipped)
