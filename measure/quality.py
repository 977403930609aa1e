"""How it sounds, measured: zone-0 quality per evaluation set and knob setting, a steady sine's
level change, and the blur-strength curves.

Definitions (:mod:`vqblur.common.spectral`; n_fft 2048, hop 512, output latency-aligned with
the input, zone size 0, mix 1):

* ``sc_db``: spectral convergence; ``lsd_db``: log-spectral distance over an 80 dB range below
  the clip's loudest bin (the bench's definition); ``lsd_db_floor100``: the older LSD with an
  absolute -100 dB power floor (what training's validation logs), reported beside it;
* ``level_change_db``: 20 log10(output RMS / input RMS) per clip; the median over clips;
* ``sine_440``: the level change of a steady 440 Hz sine (2 s; the middle 1.5 s) at -24, -12 and
  -3 dBFS peak; ``level_change_db`` is the one furthest from 0.

Below detail 1 the engine holds the codec's resynthesis to the input's level in each of four
bands, frame by frame (``Engine(hold_codec_level=True)``, the default: what a user hears). The
bench also measures the codec's setting with that hold off (``hold_codec_level=False``, the
label ``CODEC_ALONE``): the model's own quality, comparable with bundles measured before the
hold.

Blur strength (:func:`blur_strength`): for each zone size, the mean absolute change in dB
(power, floored 80 dB below the zone-0 output's loudest bin) of the blurred output against the
zone-0 output at the same other knobs, inside the zone's frequency bands and outside them. A
zone's bands are the code rows the sampler may resample (``|row - centre_row| < zone * rows``),
one row = ``model_bins / rows`` bins of the engine's STFT. :func:`blur_curve` keeps the older
curve: SC / LSD of the blurred output against the zone-0 output and the share of codes changed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from vqblur.engine.bundle import Bundle
from vqblur.engine.core import Params
from vqblur.measure.codes import blur_codes, encode_codes
from vqblur.measure.harness import (
    make_params,
    model_engine,
    render_aligned,
    setting_label,
    sine,
    zone0_params,
)
from vqblur.common.spectral import (
    EVAL_N_FFT,
    audio_quality,
    level_change_db,
    lsd_range_db,
    power_db,
    range_floor_db,
    spectral_convergence_db,
    stft_magnitude,
)

QUALITY_METHOD = ("zone size 0, mix 1, output latency-aligned with the input; SC, LSD over 80 dB below the "
                  "clip's loudest bin (n_fft 2048, hop 512), the older LSD (absolute -100 dB floor) and the "
                  "output level change (RMS out / in); median over clips")


def _median(v: Sequence[float]) -> float | None:
    a = np.asarray([x for x in v if x is not None and np.isfinite(x)], np.float64)
    return float(np.median(a)) if a.size else None


#: appended to the codec setting's label for the same setting with the level hold off
CODEC_ALONE = ", codec alone (level hold off)"


def zone0_quality(bundle: Bundle, clips: list[tuple[str, np.ndarray]], setting: Mapping[str, float],
                  params_cls: type = Params, seed: int = 0, hold_codec_level: bool = True) -> dict:
    """Zone-0 quality of one knob setting on one set of clips (medians and per clip)."""
    if not clips:
        return {"clips": 0}
    rows = []
    for name, a in clips:
        eng = model_engine(bundle, zone0_params(params_cls, setting), seed=seed,
                           hold_codec_level=hold_codec_level)
        y = render_aligned(eng, a)
        q = audio_quality(a, y)
        rows.append({"name": name, **q})
    out: dict = {"clips": len(rows)}
    for k in ("sc_db", "lsd_db", "lsd_db_floor100", "level_change_db"):
        out[k] = _median([r[k] for r in rows])
        out[k + "_mean"] = float(np.mean([r[k] for r in rows if np.isfinite(r[k])] or [np.nan]))
    out["per_clip"] = rows
    return out


#: peak levels (dBFS) of the steady sine: the codec's level error depends on the input level
SINE_LEVELS_DBFS = (-24.0, -12.0, -3.0)


def sine_level(bundle: Bundle, setting: Mapping[str, float], params_cls: type = Params,
               freq: float = 440.0, levels: Sequence[float] = SINE_LEVELS_DBFS, seed: int = 0,
               hold_codec_level: bool = True) -> dict:
    """Level change (dB) of a steady sine through the engine at zone 0 (middle 1.5 s of a 2 s
    tone), at each peak level in ``levels``; ``level_change_db`` is the one furthest from 0."""
    sr = bundle.sample_rate
    a, b = int(0.25 * sr), int(1.75 * sr)
    by = {}
    for db in levels:
        x = sine(freq, 2.0, sr, db)
        eng = model_engine(bundle, zone0_params(params_cls, setting), seed=seed,
                           hold_codec_level=hold_codec_level)
        y = render_aligned(eng, x)
        by[f"{db:g}"] = level_change_db(x[a:b], y[a:b])
    worst = max(by.values(), key=lambda v: abs(v) if np.isfinite(v) else np.inf)
    return {"freq_hz": freq, "by_dbfs": by, "level_change_db": worst}


def zone_bins(bundle: Bundle, zone_size: float, centre: float,
              n_fft: int = EVAL_N_FFT) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks [n_fft/2+1] of evaluation-STFT bins: (inside the zone's core half -- a zone
    weight of at least 1/2 on the perceptual knob axis, as the engine places it -- , inside the
    model's bins). Bins above the top model bin (e.g. Nyquist) are in neither."""
    from vqblur.engine.blur.sampler import zone_profile
    from vqblur.engine.knobs import knob_axis_position

    from vqblur.engine.dsp import SignalConfig

    f_bins, width = SignalConfig.from_bundle(bundle).model_bin_hz()
    f_max = float(f_bins[-1])
    freqs = np.arange(n_fft // 2 + 1) * bundle.sample_rate / n_fft
    ok = freqs <= f_max + 0.5 * float(width[-1])
    w = zone_profile(knob_axis_position(freqs, f_max) - float(centre), float(zone_size), zone_size / 2.0)
    return (w >= 0.5) & ok, ok


def blur_strength(bundle: Bundle, clip: np.ndarray, zones: Sequence[float], setting: Mapping[str, float],
                  params_cls: type = Params, temperature: float = 0.5, centre: float = 0.5,
                  seed: int = 0) -> list[dict]:
    """Zone size -> mean |dB change| inside / outside the zone's bands against zone 0 (one setting)."""
    knobs = {"temperature": temperature, "centre": centre, "mix": 1.0, **setting}
    ref = render_aligned(model_engine(bundle, make_params(params_cls, zone_size=0.0, **knobs), seed=seed), clip)
    S0 = stft_magnitude(ref)
    floor = range_floor_db(S0)
    P0 = power_db(S0, floor)
    out = []
    for z in zones:
        if z == 0.0:
            d = np.zeros_like(P0)
        else:
            y = render_aligned(model_engine(bundle, make_params(params_cls, zone_size=z, **knobs), seed=seed), clip)
            d = np.abs(power_db(stft_magnitude(y), floor) - P0)
        m, rows = zone_bins(bundle, z, centre)
        o = rows & ~m
        out.append({"setting": setting_label(setting), "zone_size": z, "temperature": temperature,
                    "inside_db": float(d[m].mean()) if m.any() else None,
                    "outside_db": float(d[o].mean()) if o.any() else None,
                    "inside_share_of_bins": float(m.mean())})
    return out


def blur_curve(bundle: Bundle, clip: np.ndarray, zones: Sequence[float], temps: Sequence[float],
               seed: int, setting: Mapping[str, float] | None = None,
               params_cls: type = Params) -> list[dict]:
    """SC / LSD of the blurred output against the zone-0 output, and the share of codes the
    streaming sampler changed, per (temperature, zone size)."""
    setting = dict(setting or {})
    ref = render_aligned(model_engine(bundle, zone0_params(params_cls, setting), seed=seed), clip)
    S0 = stft_magnitude(ref)
    codes0 = encode_codes(bundle, clip)
    out = []
    for t in temps:
        for z in zones:
            p = make_params(params_cls, zone_size=z, temperature=t, centre=0.5, mix=1.0, **setting)
            y = render_aligned(model_engine(bundle, p, seed=seed), clip)
            S = stft_magnitude(y)
            row = {"zone_size": z, "temperature": t,
                   "sc_db": spectral_convergence_db(S0, S), "lsd_db": lsd_range_db(S0, S)}
            if codes0.size:
                cb = blur_codes(bundle, codes0, z, t, 0.5, seed)
                row["codes_changed"] = float((cb != codes0).mean())
            out.append(row)
    return out

