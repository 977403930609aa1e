"""The ``packed`` data source: a training set in one compact file, for a machine that cannot
render it (a lent GPU has no FluidSynth, no soundfonts and none of the packaged recordings).

``vqblur pack-data OUT.npz --config CFG`` loads the config's own training data (any source;
``mix`` gives three groups), keeps from each group short active excerpts within a size budget
and writes them as 16-bit samples into a numpy ``.npz``; a run with ``data.source = "packed"``
and ``data.path = OUT.npz`` then samples its segments from them, group weights and validation
clips included, with numpy alone (no soundfile, soxr or fluidsynth).

File layout (``np.load``):

* ``group{i}`` uint8: the group's excerpts one after the other as 16-bit samples, stored as
  their first differences compressed by lzma (exact; about a third of the raw size), and
  ``group{i}_starts`` int64 ``[k + 1]`` the excerpts' offsets in samples;
* ``valid`` / ``valid_starts``: the validation clips, the same way;
* ``weights`` float64 ``[G]``: each group's share of the training segments;
* ``meta``: a JSON string (``version``, ``sample_rate``, the source's config, seconds per group).
"""

from __future__ import annotations

import functools
import json
import lzma
from pathlib import Path
from typing import Sequence

import numpy as np

from vqblur.common.errors import UserError

from .clips import Clip, LoadReport

PACK_VERSION = 2
ACTIVE_DB = -60.0  # an excerpt's mean square must reach this (dBFS), as the segment sampler's
_SCALE = 32767.0


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 32767.0 / 32768.0) * _SCALE).astype(np.int16)


def _excerpt(audio: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """One ``n``-sample stretch of ``audio [samples]``: a random start among the active ones
    (mean square at least ``ACTIVE_DB``), the loudest if none is; a shorter clip whole."""
    if audio.size <= n:
        return audio
    hop = max(1, n // 4)
    starts = np.arange(0, audio.size - n + 1, hop)
    c = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    ms = (c[starts + n] - c[starts]) / n
    active = np.flatnonzero(ms >= 10 ** (ACTIVE_DB / 10))
    s = starts[rng.choice(active)] if active.size else starts[int(np.argmax(ms))]
    return audio[s:s + n]


def select_excerpts(clips: Sequence[Clip], seconds: float, excerpt_seconds: float,
                    sample_rate: int, seed: int) -> list[np.ndarray]:
    """Excerpts of ``excerpt_seconds`` from as many clips as ``seconds`` allows (clips drawn in a
    seeded order, each once until all are used) -> float32 ``[n]`` each."""
    n = max(1, int(round(excerpt_seconds * sample_rate)))
    budget = int(seconds * sample_rate)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clips)) if clips else np.zeros(0, int)
    out, used = [], 0
    while used < budget and len(order):
        for i in order:
            e = _excerpt(np.asarray(clips[int(i)].audio, np.float32), n, rng)
            if used + e.size > budget:
                return out
            out.append(e)
            used += e.size
    return out


def _encode(x: np.ndarray) -> np.ndarray:
    """int16 ``[n]`` -> uint8 bytes: first differences (wrapping, so exact), then lzma (about
    a third of the raw size on these sounds, against about 0.6 for zlib on the samples)."""
    d = np.diff(x, prepend=np.int16(0))  # int16 arithmetic wraps: cumsum undoes it exactly
    return np.frombuffer(lzma.compress(d.tobytes(), preset=6), np.uint8)


def _decode(b: np.ndarray) -> np.ndarray:
    d = np.frombuffer(lzma.decompress(b.tobytes()), np.int16)
    return np.cumsum(d, dtype=np.int16)


def _concat(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.zeros(len(parts) + 1, np.int64)
    starts[1:] = np.cumsum([p.size for p in parts])
    data = np.concatenate([_to_int16(p) for p in parts]) if parts else np.zeros(0, np.int16)
    return _encode(data), starts


def write_pack(path: str | Path, groups: Sequence[Sequence[Clip]], weights: Sequence[float],
               valid: Sequence[Clip], *, sample_rate: int, max_mb: float, excerpt_seconds: float,
               valid_seconds: float, seed: int = 0, source: dict | None = None) -> dict:
    """Write the pack (layout in the module doc) of at most ``max_mb`` (10^6 bytes), the
    training excerpts shared between the groups by ``weights`` (the validation clips,
    ``valid_seconds`` each from their start, come off the budget first). The excerpts are
    drawn once for a generous budget; the pack keeps the longest prefix of each group's that
    fits, at the groups' shares. Returns the meta written."""
    w = np.asarray(weights, np.float64)
    if len(groups) != len(w) or not (w >= 0).all() or w.sum() <= 0:
        raise UserError("one non-negative weight per group, not all zero")
    share = w / w.sum()
    nv = int(valid_seconds * sample_rate)
    valid_data, valid_starts = _concat([np.asarray(c.audio, np.float32)[:nv] for c in valid])
    room = max_mb * 1e6 - valid_data.nbytes - 4096  # (the file's own bookkeeping)
    if room <= 0:
        raise UserError(f"--max-mb {max_mb:g} leaves no room for training excerpts after the "
                        f"validation clips ({valid_data.nbytes / 1e6:.1f} MB)")
    # raw int16 seconds that would fill the room uncompressed, times what lzma usually gives
    seconds = room / 2 / sample_rate * 4.0
    drawn = [select_excerpts(g, seconds * s, excerpt_seconds, sample_rate, seed + i) if s > 0 else []
             for i, (g, s) in enumerate(zip(groups, share))]
    scale = 1.0
    for _ in range(8):  # shrink every group's prefix alike until the whole fits
        kept = []
        for parts, s in zip(drawn, share):
            budget, used, k = seconds * s * scale * sample_rate, 0, 0
            while k < len(parts) and used + parts[k].size <= budget:
                used += parts[k].size
                k += 1
            kept.append(parts[:k])
        encoded = [_concat(parts) for parts in kept]
        size = sum(e[0].nbytes for e in encoded)
        if size <= room:
            break
        scale *= 0.98 * room / size
    else:
        raise UserError(f"could not fit the excerpts into {max_mb:g} MB")
    arrays: dict[str, np.ndarray] = {}
    for i, (data, starts) in enumerate(encoded):
        arrays[f"group{i}"], arrays[f"group{i}_starts"] = data, starts
    arrays["valid"], arrays["valid_starts"] = valid_data, valid_starts
    meta = {"version": PACK_VERSION, "codec": "int16-delta-lzma", "sample_rate": int(sample_rate),
            "seconds": [round(sum(p.size for p in parts) / sample_rate, 2) for parts in kept],
            "excerpts": [len(parts) for parts in kept], "clips": [len(g) for g in groups],
            "excerpt_seconds": excerpt_seconds, "valid_clips": len(valid), "seed": seed,
            "source": source or {}}
    arrays["weights"] = w
    arrays["meta"] = np.array(json.dumps(meta))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # (np.savez would append .npz to a name without it)
        np.savez(f, **arrays)
    return meta


def _clips(data: np.ndarray, starts: np.ndarray, prefix: str) -> list[Clip]:
    audio = _decode(data).astype(np.float32) / _SCALE
    return [Clip(name=f"{prefix}{k}", audio=audio[starts[k]:starts[k + 1]])
            for k in range(len(starts) - 1) if starts[k + 1] > starts[k]]


def read_pack(path: str | Path, sample_rate: int) -> tuple[list[list[Clip]], list[float], list[Clip], dict]:
    """-> (groups of clips, their weights, the validation clips, meta), float32 audio."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"packed training set {p} not found (make one with vqblur pack-data)")
    try:
        z = np.load(p, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{p} is not a vqblur pack ({exc})") from None
    if meta.get("version") != PACK_VERSION:
        raise UserError(f"{p}: pack version {meta.get('version')}, this vqblur reads {PACK_VERSION}")
    if meta["sample_rate"] != sample_rate:
        raise UserError(f"{p} holds {meta['sample_rate']} Hz audio, the config asks for {sample_rate} Hz")
    weights = [float(x) for x in z["weights"]]
    groups = [_clips(z[f"group{i}"], z[f"group{i}_starts"], f"g{i}_") for i in range(len(weights))]
    valid = _clips(z["valid"], z["valid_starts"], "valid")
    return groups, weights, valid, meta


def load_packed(cfg):
    """-> (groups, report, valid clips, sampler factory) as ``train._load_data`` returns; the
    groups' weights are the pack's (``data.mix_weights`` when it has one per group)."""
    from .mix import MixSampler

    if not cfg.data.path:
        raise UserError("data.source 'packed' needs data.path: the .npz vqblur pack-data wrote")
    groups, weights, valid, _ = read_pack(cfg.data.path, cfg.audio.sample_rate)
    if len(cfg.data.mix_weights) == len(groups):
        weights = list(cfg.data.mix_weights)
    valid = valid[: cfg.train.eval_examples]
    if not valid:
        raise UserError(f"{cfg.data.path} holds no validation clips")
    n = sum(len(g) for g in groups)
    factory = functools.partial(MixSampler, weights=weights)
    return groups, LoadReport(loaded=n, skipped=0), valid, factory
