"""A user's folder of audio for ``vqblur make-bundle``: read it, judge it, hold out whole files.

Torch-free (numpy, soundfile, soxr). :func:`scan_folder` reads every file under the folder
(recursively; whatever libsndfile reads: wav, flac, ogg, aiff, mp3, ... at any rate and channel
count), mixes each to mono, resamples it with soxr to the model's rate, and returns a
:class:`FolderScan`: the files kept, the files skipped with a reason each, and the minutes of
audio. :func:`refusal` says in one line why a folder cannot make a bundle (missing, empty, no
readable audio, silent, under :data:`MIN_SECONDS`), or ``None``.

Validation files are fixed by name: :func:`choose_holdout` orders the files by the sha1 of
their path relative to the folder and holds out whole files, in that order, until about
:data:`HOLDOUT_SHARE` of the audio is held out (never more than :data:`HOLDOUT_MAX_SHARE`). A
rerun on the same folder holds out the same files. A folder with too few files to hold out a
whole one (each over the maximum share) holds out the last :data:`HOLDOUT_SHARE` of every file
instead, and says so.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

MIN_SECONDS = 30.0  #: less non-silent audio than this is refused
SILENCE_DBFS = -60.0  #: a 100 ms window quieter than this (RMS) counts as silence
HOLDOUT_SHARE = 0.15  #: aim: this share of the audio held out for validation
HOLDOUT_MAX_SHARE = 0.25  #: never more than this share held out (whole files)
# extensions never tried as audio (so a folder's cover art and notes are not "unreadable audio")
NOT_AUDIO = {".txt", ".md", ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".json",
             ".xml", ".html", ".htm", ".nfo", ".cue", ".log", ".m3u", ".m3u8", ".pls", ".sfv",
             ".db", ".ini", ".toml", ".yaml", ".yml", ".csv", ".py", ".sh", ".zip", ".tar", ".gz",
             ".asd", ".reapeaks", ".pk"}


@dataclass
class FileInfo:
    """One file the folder holds that is used: its audio, mono at the model's rate."""

    name: str  # path relative to the folder (posix), what the holdout hashes
    path: Path
    audio: np.ndarray  # float32 [n]
    source_rate: int
    channels: int
    format: str
    seconds: float
    active_seconds: float  # non-silent 100 ms windows
    peak_dbfs: float

    @property
    def key(self) -> int:
        """The holdout order: sha1 of the relative name (stable across machines)."""
        return int.from_bytes(hashlib.sha1(self.name.encode("utf-8")).digest()[:8], "big")


@dataclass
class FolderScan:
    root: Path
    sample_rate: int
    files: list[FileInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    ignored: int = 0  # files not tried (hidden, or a non-audio extension such as .txt / .jpg)
    seen: int = 0  # every regular file under the folder
    missing: bool = False
    not_a_folder: bool = False

    @property
    def seconds(self) -> float:
        return float(sum(f.seconds for f in self.files))

    @property
    def active_seconds(self) -> float:
        return float(sum(f.active_seconds for f in self.files))

    def fingerprint(self) -> list[list]:
        """(name, size, mtime_ns) of every file tried: a rerun compares it to know the folder
        is the one the work folder was made from."""
        out = []
        for name in sorted([f.name for f in self.files] + [n for n, _ in self.skipped]):
            p = self.root / name
            try:
                st = p.stat()
                out.append([name, st.st_size, st.st_mtime_ns])
            except OSError:
                out.append([name, -1, -1])
        return out


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def candidate_files(root: Path, exclude: Iterable[Path] = ()) -> tuple[list[Path], int, int]:
    """-> (files to try as audio, sorted; number ignored; number of regular files seen).

    Hidden files and folders (a leading '.') and files with a plainly non-audio extension are
    ignored; ``exclude`` folders (the work folder, the output) are not walked."""
    excl = {Path(e).resolve() for e in exclude}
    out, ignored, seen = [], 0, 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if (here / d).resolve() in excl:
                continue
            keep.append(d)
        dirnames[:] = keep
        for fn in filenames:
            p = here / fn
            if not p.is_file():
                continue
            seen += 1
            if fn.startswith(".") or p.suffix.lower() in NOT_AUDIO:
                ignored += 1
                continue
            out.append(p)
    return sorted(out), ignored, seen


def _active_seconds(x: np.ndarray, sr: int) -> tuple[float, float]:
    """(seconds of 100 ms windows above SILENCE_DBFS RMS, peak dBFS)."""
    if x.size == 0:
        return 0.0, -np.inf
    peak = float(np.max(np.abs(x)))
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    w = max(1, sr // 10)
    n = x.size // w
    if n == 0:
        ms = float(np.mean(x.astype(np.float64) ** 2))
        return (x.size / sr if ms > 10 ** (SILENCE_DBFS / 10) else 0.0), peak_db
    ms = np.mean(x[: n * w].astype(np.float64).reshape(n, w) ** 2, axis=1)
    return float((ms > 10 ** (SILENCE_DBFS / 10)).sum() * w / sr), peak_db


def read_file(path: Path, sample_rate: int) -> tuple[np.ndarray, int, int, str]:
    """-> (float32 mono at ``sample_rate``, source rate, channels, format). Raises ValueError
    with a short reason on anything unusable."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - libsndfile's own words are the reason
        msg = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise ValueError(f"not audio soundfile reads ({msg})") from None
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot decode ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise ValueError("no samples")
    channels = data.shape[1]
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ValueError("non-finite samples (NaN or inf)")
    if sr != sample_rate:
        import soxr

        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr), int(channels), str(info.format)


def scan_folder(folder: str | Path, sample_rate: int, *, exclude: Iterable[Path] = (),
                progress: bool = False) -> FolderScan:
    """Read every audio file under ``folder`` (see the module doc). Never raises for a bad
    file or a bad folder: :func:`refusal` judges the result."""
    root = Path(folder).expanduser()
    scan = FolderScan(root=root, sample_rate=sample_rate)
    if not root.exists():
        scan.missing = True
        return scan
    if not root.is_dir():
        scan.not_a_folder = True
        return scan
    files, scan.ignored, scan.seen = candidate_files(root, exclude)
    it: Iterable[Path] = files
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(files, desc="read folder", unit="file")
    for p in it:
        name = _rel(root, p)
        try:
            audio, sr, ch, fmt = read_file(p, sample_rate)
        except ValueError as exc:
            scan.skipped.append((name, str(exc)))
            continue
        active, peak = _active_seconds(audio, sample_rate)
        if active == 0.0:
            scan.skipped.append((name, f"silent (peak {peak:.0f} dBFS)" if np.isfinite(peak)
                                 else "silent (digital silence)"))
            continue
        scan.files.append(FileInfo(name=name, path=p, audio=audio, source_rate=sr, channels=ch,
                                   format=fmt, seconds=audio.size / sample_rate,
                                   active_seconds=active, peak_dbfs=peak))
    return scan


def refusal(scan: FolderScan, min_seconds: float = MIN_SECONDS) -> str | None:
    """One line saying why this folder cannot make a bundle, or None when it can."""
    root = scan.root
    if scan.missing:
        return f"{root}: no such folder"
    if scan.not_a_folder:
        return f"{root}: is a file, not a folder (put your audio files in a folder and pass that)"
    if scan.seen == 0:
        return f"{root}: the folder is empty (no files, looked recursively)"
    if not scan.files:
        unread = [(n, r) for n, r in scan.skipped if not r.startswith("silent")]
        silent = [n for n, r in scan.skipped if r.startswith("silent")]
        if silent and not unread:
            return (f"{root}: the audio is silent ({len(silent)} file(s), nothing above "
                    f"{SILENCE_DBFS:.0f} dBFS)")
        if not scan.skipped:
            return (f"{root}: no audio files ({scan.seen} file(s), none of them audio: "
                    "wav, flac, ogg, aiff, mp3, ...)")
        first = unread[0] if unread else scan.skipped[0]
        return (f"{root}: no readable audio ({len(scan.skipped)} file(s) tried, none readable; "
                f"e.g. {first[0]}: {first[1]})")
    if scan.active_seconds < min_seconds:
        return (f"{root}: only {scan.active_seconds:.1f} s of (non-silent) audio in "
                f"{len(scan.files)} file(s); make-bundle needs at least {min_seconds:.0f} s "
                "(about 10 minutes makes a good bundle)")
    return None


@dataclass
class Holdout:
    """Which audio validates: whole files (``names``), or the tail of every file (``tail``)."""

    names: list[str]
    tail: float = 0.0  # > 0: the last `tail` share of every file is held out instead
    note: str = ""

    def split(self, files: list[FileInfo]) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
        """-> (train pieces, held-out pieces), each (name, audio)."""
        train, valid = [], []
        for f in files:
            if self.tail > 0:
                cut = int(round(f.audio.size * (1.0 - self.tail)))
                train.append((f.name, f.audio[:cut]))
                valid.append((f.name + " (last part)", f.audio[cut:]))
            elif f.name in self.names:
                valid.append((f.name, f.audio))
            else:
                train.append((f.name, f.audio))
        return train, valid


def choose_holdout(files: list[FileInfo], share: float = HOLDOUT_SHARE,
                   max_share: float = HOLDOUT_MAX_SHARE) -> Holdout:
    """Whole files in sha1-of-name order until ``share`` of the audio (see the module doc)."""
    total = sum(f.seconds for f in files)
    held, names = 0.0, []
    for f in sorted(files, key=lambda f: (f.key, f.name)):
        if held >= share * total:
            break
        if held + f.seconds <= max_share * total and len(names) < len(files) - 1:
            names.append(f.name)
            held += f.seconds
    if not names:
        return Holdout(names=[], tail=share,
                       note=(f"too few files to hold out a whole one (each is over "
                             f"{100 * max_share:.0f} % of the audio): the last "
                             f"{100 * share:.0f} % of every file is held out instead"))
    return Holdout(names=sorted(names))


def validation_tails(pieces: list[tuple[str, np.ndarray]], share: float, min_seconds: float = 0.5,
                     sample_rate: int = 48000) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """The training pieces split again: (what trains: the first ``1 - share`` of each piece,
    what validates: the last ``share`` of each). A piece whose tail would be under
    ``min_seconds`` trains whole. Validation chooses the checkpoint and stops training, so it
    is kept apart from the held-out files the card measures on."""
    fit, tails = [], []
    for name, a in pieces:
        cut = int(round(a.size * (1.0 - share)))
        if a.size - cut < int(min_seconds * sample_rate):
            fit.append((name, a))
            continue
        fit.append((name, a[:cut]))
        tails.append((name + " (validation tail)", a[cut:]))
    if not tails:  # every piece too short: validate on the training audio itself
        return pieces, [(name + " (trained on)", a) for name, a in pieces]
    return fit, tails


def excerpts(pieces: list[tuple[str, np.ndarray]], sample_rate: int, seconds: float,
             total_seconds: float) -> list[tuple[str, np.ndarray]]:
    """Up to ``total_seconds`` of ``seconds``-long excerpts, spread evenly over the pieces
    (deterministic): the validation set training evaluates on every few steps."""
    n = int(seconds * sample_rate)
    slots = []
    for name, a in pieces:
        k = max(1, a.size // n)
        for j in range(k):
            slots.append((name, a, j, k))
    want = max(1, int(total_seconds // seconds))
    if len(slots) > want:
        idx = np.linspace(0, len(slots) - 1, want).round().astype(int)
        slots = [slots[i] for i in sorted(set(idx.tolist()))]
    out = []
    for name, a, j, k in slots:
        s = 0 if a.size <= n else int((a.size - n) * (j + 0.5) / k)
        out.append((f"{name}@{s / sample_rate:.1f}s", a[s:s + n]))
    return out


def pieces_of(audio: np.ndarray, sample_rate: int, seconds: float = 10.0) -> list[np.ndarray]:
    """Cut a long file into pieces of about ``seconds`` (so training draws segments in
    proportion to duration: the sampler picks a clip uniformly, then a start)."""
    n = int(seconds * sample_rate)
    if audio.size <= 1.5 * n:
        return [audio]
    k = int(round(audio.size / n))
    bounds = np.linspace(0, audio.size, k + 1).round().astype(int)
    return [audio[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
