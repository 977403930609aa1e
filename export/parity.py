"""Parity of an exported bundle with the PyTorch model it came from.

:func:`check_parity` streams the bundle's step graphs with onnxruntime one code column at a
time (through the engine's own :class:`vqblur.engine.codec.OnnxCodec`, one thread) and
compares with the PyTorch model run *offline* on the whole clip (``model.encode(logmag)``,
``model.decode(codes)``):

* log-magnitudes: the ONNX decoder is fed the *same* codes as the offline decoder (the
  offline ones), so the figure measures the graphs and the streaming state, not a code flip;
  max abs error must be <= ``tol`` (1e-4) for an fp32 bundle;
* codes: the ONNX encoder's codes against the offline ones; every cell that differs is
  checked against the offline latent's distances to the codebook: when the two codes are
  (near-)equally close (distance gap < ``tie_gap``, 1e-5) the difference is a tie broken by
  float rounding, otherwise a real mismatch;
* end-to-end (ONNX codes into the ONNX decoder) error is reported too, for information.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TOL = 1e-4
DEFAULT_TIE_GAP = 1e-5


def default_audio(cfg, seconds: float = 10.0) -> tuple[np.ndarray, str]:
    """~``seconds`` of audio the model was not trained on: the rendered GM *test* split if it
    is already in the data cache (then the valid split), else a synthetic harmonic signal.
    Never renders anything. -> (float32 [n], description)."""
    sr = cfg.audio.sample_rate
    want = int(round(seconds * sr))
    try:
        if cfg.data.source == "gm":
            from vqblur.training.data.corpus import default_data_root
            from vqblur.training.data.nsynth import load_nsynth
            from vqblur.training.data.render_gm import split_dir

            root = Path(cfg.data.path).expanduser() if cfg.data.path else default_data_root()
            for split in ("test", "valid"):
                d = split_dir(root, split)
                if (d / "examples.json").is_file():
                    clips, _ = load_nsynth(d, split, sr, limit=64, seed=0)
                    parts, n = [], 0
                    for c in clips:
                        a = np.asarray(c.audio, np.float32)
                        if np.abs(a).max(initial=0.0) < 1e-3:
                            continue
                        parts.append(a)
                        n += len(a)
                        if n >= want:
                            break
                    if parts:
                        audio = np.concatenate(parts)[:want]
                        return audio, f"gm {split} split ({len(parts)} clips)"
    except Exception:  # no data cache, unreadable clip: fall back to the synthetic signal
        pass
    from vqblur.export.testing import harmonic_signal

    return harmonic_signal(seconds, sr), "synthetic harmonic signal"


def load_audio_file(path: str | Path, sample_rate: int) -> np.ndarray:
    """A mono float32 clip at ``sample_rate`` (soundfile + soxr)."""
    import soundfile as sf

    from vqblur.common.errors import UserError

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    x = x.mean(axis=1)
    if sr != sample_rate:
        import soxr

        x = soxr.resample(x, sr, sample_rate).astype(np.float32)
    return x


def flat_codes(model, micro, macro):
    """CodeStack parts -> the bundle's flat code layout [n_codes, C]: micro level 0 rows, level 1
    rows, ..., then the macro rows (docs/ARCHITECTURE.md "Step graphs")."""
    L, R, C = micro.shape[1], micro.shape[2], micro.shape[3]
    parts = [micro[0].reshape(L * R, C)]
    if macro is not None:
        parts.append(macro[0])
    return np.concatenate([np.asarray(p) for p in parts], axis=0).astype(np.int64)


def _offline(model, cfg, audio: np.ndarray):
    """-> (logmag [bins, T] float32, codes [n_codes, C] int64, decoded [bins, T], distances
    [n_codes, C, K] float64 of each quantiser's input to its codebook, along the offline path)."""
    import torch

    from vqblur.training.features import log_magnitude
    from vqblur.training.model import _fold

    lm = log_magnitude(torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None], cfg.audio)
    F = cfg.audio.frames_per_column
    T = lm.shape[2] - lm.shape[2] % F
    lm = lm[:, :, :T]

    def dist(q, flat):
        cb = q.codebook().double()
        return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.t() + cb.pow(2).sum(1)[None]

    with torch.no_grad():
        stack = model.encode_all(lm)
        dec = model.decode_all(stack)  # [1, bins, T]
        z = model.encoder(_fold(model._to_rows_axis(model.normaliser(lm)), F))  # [1, D, rows, C]
        _, base = model._macro_codes(z)
        D, R, C = z.shape[1], z.shape[2], z.shape[3]
        flat = (z - base).permute(0, 2, 3, 1).reshape(-1, D)
        d2 = []
        for level, q in enumerate(model.micro_quantizers()):
            flat = q._prepare(flat)
            d2.append(dist(q, flat.double()).reshape(R, C, -1))
            flat = flat - q.codebook()[stack.micro[0, level].reshape(-1)]
        if model.macro_factor:
            m = model.macro_down(z)
            mf = m.permute(0, 2, 3, 1).reshape(-1, D).double()
            d2.append(dist(model.macro_quantizer, mf).reshape(m.shape[2], C, -1))
    codes = flat_codes(model, stack.micro.numpy(), None if stack.macro is None else stack.macro.numpy())
    return lm[0].numpy(), codes, dec[0].numpy(), np.concatenate([d.numpy() for d in d2], axis=0)


def _consequences(diff: np.ndarray, ties: np.ndarray, levels: int, rows: int, macro_factor: int) -> np.ndarray:
    """Differing codes that follow from a tie earlier in the same cell (a tie at micro level l
    changes every later level's residual; a macro tie changes the micro residuals of its rows)."""
    out = np.zeros_like(diff)
    n_micro = levels * rows
    tie_at = diff & ties
    upstream = np.cumsum(tie_at[:n_micro].reshape(levels, rows, -1), axis=0) > 0  # a tie here or before
    later = np.zeros_like(upstream)
    later[1:] = upstream[:-1]  # a tie at an earlier level of the same cell
    if macro_factor and diff.shape[0] > n_micro:  # a macro tie: every micro level of its rows
        later |= np.repeat(tie_at[n_micro:], macro_factor, axis=0)[None]
    out[:n_micro] = (diff[:n_micro].reshape(levels, rows, -1) & later).reshape(n_micro, -1)
    return out


def stream_bundle(bundle, logmag: np.ndarray, feed_codes: np.ndarray | None = None,
                  threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run a bundle's step graphs column by column from zero state.

    logmag [bins, T] -> (codes [rows, C] from the ONNX encoder, decoded [bins, T] of those
    codes, decoded [bins, T] of ``feed_codes`` [rows, C] if given, else None).
    """
    from vqblur.engine.codec import OnnxCodec

    codec = OnnxCodec(bundle, threads=threads)
    codec_fed = codec.fork() if feed_codes is not None else None
    F = bundle.frames_per_column
    bins, T = logmag.shape
    C = T // F
    codes = np.zeros((codec.n_codes, C), np.int64)
    own = np.zeros((bins, C * F), np.float32)
    fed = np.zeros((bins, C * F), np.float32) if feed_codes is not None else None
    for c in range(C):
        col = logmag[:, c * F:(c + 1) * F].T  # [F, bins], oldest frame first
        k = codec.encode(col).copy()
        codes[:, c] = k
        own[:, c * F:(c + 1) * F] = codec.decode(k).T
        if codec_fed is not None:
            fed[:, c * F:(c + 1) * F] = codec_fed.decode(feed_codes[:, c]).T
    return codes, own, fed


def check_parity(checkpoint, bundle_dir, audio: np.ndarray | str | Path | None = None,
                 seconds: float = 10.0, tol: float = DEFAULT_TOL,
                 tie_gap: float = DEFAULT_TIE_GAP, threads: int = 1) -> dict[str, Any]:
    """Streaming ONNX (onnxruntime) vs offline PyTorch on ``seconds`` of ``audio``.

    ``checkpoint``: a checkpoint path/run folder, or an already loaded ``(model, cfg)`` pair.
    ``audio``: float32 samples at the model's rate, an audio file, or None for
    :func:`default_audio`. Returns a JSON-able dict; ``passed`` is True when the max abs
    log-magnitude error (same codes) is <= ``tol`` and every differing code is a tie.
    """
    from vqblur.engine.bundle import load_bundle

    t0 = time.perf_counter()
    if isinstance(checkpoint, tuple):
        model, cfg = checkpoint[0], checkpoint[1]
    else:
        from vqblur.training.checkpoint import load_checkpoint, resolve_checkpoint

        model, cfg, _ = load_checkpoint(resolve_checkpoint(checkpoint))
    model.eval()
    sr = cfg.audio.sample_rate
    if audio is None:
        audio, source = default_audio(cfg, seconds)
    elif isinstance(audio, (str, Path)):
        source = str(audio)
        audio = load_audio_file(audio, sr)
    else:
        source = "given array"
    audio = np.asarray(audio, np.float32).reshape(-1)[: int(round(seconds * sr))]

    bundle = load_bundle(bundle_dir)
    lm, codes_t, dec_t, d2 = _offline(model, cfg, audio)
    codes_o, dec_own, dec_fed = stream_bundle(bundle, lm, feed_codes=codes_t, threads=threads)

    err = np.abs(dec_fed.astype(np.float64) - dec_t)
    err_own = np.abs(dec_own.astype(np.float64) - dec_t)
    diff = codes_o != codes_t
    K = d2.shape[2]
    safe_o = np.minimum(codes_o, K - 1)
    gap_all = np.abs(np.take_along_axis(d2, safe_o[..., None], 2)[..., 0]
                     - np.take_along_axis(d2, codes_t[..., None], 2)[..., 0])
    tie_mask = diff & (gap_all < tie_gap)
    tie_mask |= _consequences(diff, tie_mask, getattr(model, "levels", 1), bundle.rows,
                              getattr(model, "macro_factor", 0))
    gaps = gap_all[diff]
    ties = int(tie_mask.sum())
    n_diff = int(diff.sum())
    # how close the nearest runner-up code is, over all cells (context for the tie counts)
    srt = np.sort(d2, axis=2)
    runner_gap = srt[..., 1] - srt[..., 0] if d2.shape[2] > 1 else np.full(d2.shape[:2], np.inf)
    result = {
        "audio": source,
        "seconds": round(len(audio) / sr, 3),
        "columns": int(codes_t.shape[1]),
        "precision": bundle.precision,
        "max_abs_err_logmag": float(err.max()) if err.size else 0.0,
        "mean_abs_err_logmag": float(err.mean()) if err.size else 0.0,
        "tolerance": tol,
        "codes_total": int(codes_t.size),
        "codes_differ": n_diff,
        "codes_differ_ties": ties,
        "codes_differ_not_ties": n_diff - ties,
        "code_agreement": float(1.0 - n_diff / max(1, codes_t.size)),
        "tie_gap": tie_gap,
        "max_gap_of_differing_codes": float(gaps.max()) if n_diff else 0.0,
        "cells_with_runner_up_within_tie_gap": int((runner_gap < tie_gap).sum()),
        "max_abs_err_logmag_own_codes": float(err_own.max()) if err_own.size else 0.0,
        "mean_abs_err_logmag_own_codes": float(err_own.mean()) if err_own.size else 0.0,
        "seconds_taken": round(time.perf_counter() - t0, 2),
    }
    result["passed"] = bool(result["max_abs_err_logmag"] <= tol and result["codes_differ_not_ties"] == 0)
    return result


def format_parity(p: dict[str, Any]) -> str:
    lines = [
        f"parity on {p['seconds']:g} s of {p['audio']}: {p['columns']} columns, {p['codes_total']} codes "
        f"({p['precision']})",
        f"  log-magnitude, same codes: max abs error {p['max_abs_err_logmag']:.3g} "
        f"(mean {p['mean_abs_err_logmag']:.3g}, tolerance {p['tolerance']:g})",
        f"  codes: {p['codes_differ']} differ ({p['codes_differ_ties']} ties with gap < "
        f"{p['tie_gap']:g}, {p['codes_differ_not_ties']} real), agreement {100 * p['code_agreement']:.3f}%",
        f"  end to end (ONNX codes): max abs error {p['max_abs_err_logmag_own_codes']:.3g} "
        f"(mean {p['mean_abs_err_logmag_own_codes']:.3g})",
        f"  {'PASS' if p['passed'] else ('not exact (expected for a quantised bundle)' if p['precision'] != 'fp32' else 'FAIL')}",
    ]
    return "\n".join(lines)
