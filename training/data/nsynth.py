"""Load an NSynth folder: ``nsynth-<split>/examples.json`` + ``audio/<note_str>.wav``.

``path`` may be the split folder itself (it holds ``examples.json``) or a folder that
holds ``nsynth-<split>/`` (the layout of the official download: ``nsynth-train``,
``nsynth-valid``, ``nsynth-test``; our rendered corpus uses ``nsynth-gm-<split>``, which is
found too). Real NSynth audio is 16 kHz; it is resampled with soxr to ``sample_rate``.
A missing or unreadable wav is skipped with a warning that names it, and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from vqblur.common.errors import UserError

from .clips import Clip, LoadReport, subset
from .folder import read_mono, warn_skipped


def find_split_dir(path: str | Path, split: str) -> Path:
    root = Path(path).expanduser()
    if (root / "examples.json").is_file():
        return root
    for name in (f"nsynth-{split}", f"nsynth-gm-{split}"):
        if (root / name / "examples.json").is_file():
            return root / name
    found = sorted(p.parent.name for p in root.glob("nsynth-*/examples.json"))
    raise UserError(
        f"no NSynth split {split!r} under {root}: expected {root}/nsynth-{split}/examples.json"
        + (f" (found: {', '.join(found)})" if found else ""))


def load_nsynth(path: str | Path, split: str = "train", sample_rate: int = 48000, *,
                limit: int | None = None, seed: int = 0, progress: bool = False):
    """-> (list[Clip], LoadReport), clips in ``note_str`` order, meta = the json entry."""
    d = find_split_dir(path, split)
    try:
        examples = json.loads((d / "examples.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {d / 'examples.json'}: {exc}") from exc
    if not isinstance(examples, dict) or not examples:
        raise UserError(f"{d / 'examples.json'} holds no examples")
    names = subset(sorted(examples), limit, seed)
    it = names
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(names, desc=f"load {d.name}", unit="file")
    clips, skipped = [], []
    for name in it:
        f = d / "audio" / f"{name}.wav"
        try:
            audio, _, _ = read_mono(f, sample_rate)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
            warn_skipped(f, exc)
            skipped.append(str(f))
            continue
        meta = dict(examples[name]) if isinstance(examples[name], dict) else {}
        meta.setdefault("source_sample_rate", meta.get("sample_rate"))
        meta["sample_rate"] = sample_rate
        clips.append(Clip(name=name, audio=audio, meta=meta))
    if not clips:
        raise UserError(f"no readable audio in {d}: all {len(skipped)} examples were skipped")
    return clips, LoadReport(loaded=len(clips), skipped=len(skipped), skipped_files=skipped)
