"""A mel-scale log-spectral distance, and the pure codec measured with it through the engine.

``mel_lsd_db(ref, est, sr)``: both signals' power spectrograms (n_fft 2048, hop 512, periodic
Hann: :func:`vqblur.common.spectral.stft_magnitude`, as the bench) summed into
:data:`N_MELS` triangular bands evenly spaced on the mel scale (HTK formula, 20 Hz to the
Nyquist frequency), in dB, both floored at 80 dB below the reference's loudest band-frame
cell; then ``mean_t sqrt(mean_m (P_dB - P_hat_dB)^2)``. Bands of equal perceptual width weigh
the low frequencies as the ear does; the bench's linear-frequency LSD gives the top half of the
spectrum (12-24 kHz at 48 kHz) half its weight.

:func:`codec_quality` renders clips through :class:`vqblur.engine.core.Engine` at zone 0 and
``detail = 0`` (the pure codec: what the decoder makes of the encoder's codes, with the input's
phase; by default with the engine's band level hold off, so the figures are the model's own),
latency-aligned, and returns the median mel-LSD, level change, SC and LSD over the clips.
Used by ``vqblur make-bundle``'s card. numpy + onnxruntime only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from vqblur.common.melscale import mel_filterbank as _mel_filterbank
from vqblur.common.spectral import (EVAL_HOP, EVAL_N_FFT, LSD_RANGE_DB, level_change_db,
                                    lsd_range_db, spectral_convergence_db, stft_magnitude)

N_MELS = 80
F_MIN = 20.0

MEL_LSD_METHOD = (f"mel-LSD: power spectrogram (n_fft {EVAL_N_FFT}, hop {EVAL_HOP}) in {N_MELS} "
                  f"mel bands ({F_MIN:.0f} Hz to Nyquist), floored {LSD_RANGE_DB:.0f} dB below the "
                  "input's loudest cell, RMS over bands, mean over frames; pure codec (zone 0, "
                  "detail 0) through the engine; median over the held-out files")


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int = EVAL_N_FFT, n_mels: int = N_MELS,
                   f_min: float = F_MIN, f_max: float | None = None) -> np.ndarray:
    """Triangular mel filters [n_mels, n_fft/2+1] (``vqblur.common.melscale``; cached, read-only)."""
    fb = _mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max)
    fb.setflags(write=False)
    return fb


def mel_power_db(audio: np.ndarray, sample_rate: int, floor_db: float | None = None) -> np.ndarray:
    """Mel-band power in dB [n_mels, frames] (floored at ``floor_db`` when given)."""
    p = stft_magnitude(audio) ** 2
    mel = mel_filterbank(int(sample_rate)) @ p
    db = 10.0 * np.log10(np.maximum(mel, 1e-30))
    return db if floor_db is None else np.maximum(db, floor_db)


def mel_lsd_db(ref: np.ndarray, est: np.ndarray, sample_rate: int,
               range_db: float = LSD_RANGE_DB) -> float:
    """The mel-scale LSD (dB) of ``est`` against ``ref`` (aligned mono; the shorter length)."""
    n = min(len(ref), len(est))
    r = mel_power_db(ref[:n], sample_rate)
    floor = float(r.max()) - range_db
    e = mel_power_db(est[:n], sample_rate, floor)
    diff = np.maximum(r, floor) - e
    return float(np.mean(np.sqrt(np.mean(diff ** 2, axis=0))))


def _median(v: Sequence[float]) -> float | None:
    a = np.asarray([x for x in v if x is not None and np.isfinite(x)], np.float64)
    return float(np.median(a)) if a.size else None


def codec_quality(bundle, clips: Sequence[tuple[str, np.ndarray]], progress: bool = False,
                  hold_codec_level: bool = False) -> dict:
    """The pure codec on ``clips`` [(name, mono float32 at the bundle's rate)]: medians of
    mel-LSD, level change, SC and LSD (80 dB range), and the per-clip figures. The model alone
    by default: the engine at detail 0 with its band level hold off (``hold_codec_level=True``:
    detail 0 as a user hears it, the codec's band levels held to the input's)."""
    from vqblur.engine.bundle import Bundle, load_bundle
    from vqblur.measure.harness import model_engine, render_aligned, zone0_params

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    it = clips
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(list(clips), desc="measure codec", unit="file")
    rows = []
    for name, a in it:
        a = np.asarray(a, np.float32)
        eng = model_engine(b, zone0_params(setting={"detail": 0.0}), hold_codec_level=hold_codec_level)
        y = render_aligned(eng, a)
        s, s_hat = stft_magnitude(a), stft_magnitude(y)
        rows.append({"name": name, "seconds": round(a.size / b.sample_rate, 2),
                     "mel_lsd_db": mel_lsd_db(a, y, b.sample_rate),
                     "level_change_db": level_change_db(a, y),
                     "sc_db": spectral_convergence_db(s, s_hat), "lsd_db": lsd_range_db(s, s_hat)})
    out: dict = {"clips": len(rows), "method": MEL_LSD_METHOD}
    for k in ("mel_lsd_db", "level_change_db", "sc_db", "lsd_db"):
        out[k] = _median([r[k] for r in rows])
    out["per_clip"] = rows
    return out
