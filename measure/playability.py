"""Is the blur an effect a musician can play? Level, limiter, flux and where the change lies,
over a grid of knob settings on real recordings (torch-free).

Every figure compares the engine's output (latency-compensated) with its input on a 64-band
mel power spectrogram (n_fft 1024, hop 256 at the model rate, HTK mel 0 Hz .. Nyquist) in dB,
floored 80 dB below the input's loudest cell (the same floor for both):

* ``level_db``: output energy against input energy, 10 log10(sum y^2 / sum x^2);
* ``limited``: the output went past the limiter's knee (|y| > 0.89: the limiter acted);
* ``flux_ratio``: spectral flux (mean |dB_t - dB_t-1| over bands and frames) of the output
  over the input's: above 1 the blur roughens, below 1 it smooths;
* ``change_db``: mean |dB_out - dB_in| over bands and frames: how audible the blur is;
* ``centroid_hz``: where the change lies: the mel band centroid of the per-band mean change
  (in mel, then in Hz); ``width_oct``: its spread, the weighted standard deviation in octaves.

A *setting* is a knob dict; :data:`GRID` is the grid of issue 18 (scale x centre x zone size at
temperature 0.5, detail 1; plus detail 0, other temperatures, low centres) and
:data:`QUIET_SETTINGS` the settings also run on a copy of each clip 30 dB down. Inputs are
normalised to peak at -3 dBFS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

N_FFT = 1024
HOP = 256
N_MELS = 64
RANGE_DB = 80.0
PEAK_DBFS = -3.0
QUIET_DB = -30.0
KNEE = 0.89


def _base(**kw) -> dict[str, float]:
    d = {"zone_size": 0.3, "centre": 0.5, "temperature": 0.5, "detail": 1.0, "scale": 0.0}
    d.update(kw)
    return d


#: scale {0, 1} x centre {0.15, 0.5} x zone {0.1, 0.3, 0.5, 1.0} at T 0.5, detail 1 ...
GRID: list[dict[str, float]] = [
    _base(scale=s, centre=c, zone_size=z)
    for s in (0.0, 1.0) for c in (0.15, 0.5) for z in (0.1, 0.3, 0.5, 1.0)
] + [
    _base(detail=0.0, zone_size=0.3, centre=0.5),
    _base(detail=0.0, zone_size=0.3, centre=0.15),
    _base(temperature=0.1), _base(temperature=0.25), _base(temperature=0.9),
    _base(temperature=0.9, scale=1.0),
    _base(zone_size=0.1, centre=0.1), _base(zone_size=0.1, centre=0.2),
]
#: ... and these on a quiet copy of each clip (30 dB down)
QUIET_SETTINGS: list[dict[str, float]] = [
    _base(zone_size=0.3, centre=0.15), _base(zone_size=0.3, centre=0.15, scale=1.0),
    _base(zone_size=1.0, temperature=0.9),
]


def setting_label(s: dict[str, float]) -> str:
    return (f"scale {s['scale']:g} centre {s['centre']:g} zone {s['zone_size']:g} "
            f"T {s['temperature']:g} detail {s['detail']:g}")


def mel_filterbank(sr: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> tuple[np.ndarray, np.ndarray]:
    """HTK-mel triangles [n_mels, n_fft/2+1] and the band centres in Hz [n_mels]."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(0.0, mel(sr / 2), n_mels + 2))
    f = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, c, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((f - lo) / (c - lo), (hi - f) / (hi - c)))
    return fb, edges[1:-1]


def mel_power(x: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Mono audio [n] -> mel power [frames, n_mels] (Hann window, no padding)."""
    x = np.asarray(x, np.float64)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    n = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(N_FFT), axis=1)) ** 2
    return spec @ fb.T


@dataclass
class RunFigures:
    """One clip x setting."""

    clip: str
    setting: str
    quiet: bool
    level_db: float
    peak: float
    limited: bool
    flux_ratio: float
    change_db: float
    band_change_db: list[float] = field(repr=False)  # [n_mels] mean change per band


def compare(x: np.ndarray, y: np.ndarray, sr: int, fb=None) -> dict:
    """Input x and latency-aligned output y (same length, mono) -> the figures of one run."""
    fb = fb if fb is not None else mel_filterbank(sr)[0]
    px, py = mel_power(x, fb), mel_power(y, fb)
    floor = 10 * np.log10(max(px.max(), 1e-20)) - RANGE_DB
    dx = np.maximum(10 * np.log10(np.maximum(px, 1e-20)), floor)
    dy = np.maximum(10 * np.log10(np.maximum(py, 1e-20)), floor)
    fx = np.abs(np.diff(dx, axis=0)).mean() if len(dx) > 1 else 0.0
    fy = np.abs(np.diff(dy, axis=0)).mean() if len(dy) > 1 else 0.0
    band = np.abs(dy - dx).mean(axis=0)
    ex, ey = float(np.sum(np.square(x, dtype=np.float64))), float(np.sum(np.square(y, dtype=np.float64)))
    return {"level_db": 10 * np.log10(max(ey, 1e-30) / max(ex, 1e-30)), "peak": float(np.abs(y).max()),
            "flux_ratio": float(fy / fx) if fx > 0 else 1.0, "change_db": float(band.mean()),
            "band_change_db": band}


def centroid(band_change: np.ndarray, centres_hz: np.ndarray) -> tuple[float, float]:
    """(centroid in Hz on the mel axis, weighted spread in octaves) of a per-band change."""
    w = np.maximum(np.asarray(band_change, np.float64), 0.0)
    if w.sum() <= 0:
        return float("nan"), float("nan")
    mel = 2595.0 * np.log10(1.0 + centres_hz / 700.0)
    m = float((w * mel).sum() / w.sum())
    hz = 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    lo = np.log2(np.maximum(centres_hz, 20.0))
    mu = float((w * lo).sum() / w.sum())
    width = float(np.sqrt((w * (lo - mu) ** 2).sum() / w.sum()))
    return hz, width


def normalise(x: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    p = float(np.abs(x).max())
    return (x * (10 ** (peak_dbfs / 20) / p)).astype(np.float32) if p > 0 else x.astype(np.float32)


def render(bundle, x: np.ndarray, setting: dict[str, float], seed: int = 0, block: int = 4096) -> np.ndarray:
    """The engine's output for mono x at constant knobs, latency-compensated to x's length."""
    from vqblur.engine.core import Engine, Params

    e = bundle if hasattr(bundle, "process") else Engine(bundle, Params(**setting), seed=seed)
    if hasattr(bundle, "process"):
        e.set_params(Params(**setting))
        e.reset()
    D = e.latency_samples
    xin = np.concatenate([x, np.zeros(D, np.float32)])
    y = np.concatenate([e.process(xin[a:a + block]) for a in range(0, len(xin), block)])
    return y[D:D + len(x)]


@dataclass
class SettingSummary:
    """Medians (and extremes) over the clips of one setting."""

    setting: str
    knobs: dict
    quiet: bool
    runs: int
    level_median_abs_db: float
    level_worst_db: float
    limited_runs: int
    flux_median: float
    change_median_db: float
    centroid_hz: float
    width_oct: float


def summarise(runs: list[RunFigures], knobs: dict, centres_hz: np.ndarray) -> SettingSummary:
    lv = np.array([r.level_db for r in runs])
    hz, width = centroid(np.median(np.stack([r.band_change_db for r in runs]), axis=0), centres_hz)
    return SettingSummary(
        setting=runs[0].setting, knobs=knobs, quiet=runs[0].quiet, runs=len(runs),
        level_median_abs_db=float(np.median(np.abs(lv))), level_worst_db=float(lv[np.argmax(np.abs(lv))]),
        limited_runs=int(sum(r.limited for r in runs)),
        flux_median=float(np.median([r.flux_ratio for r in runs])),
        change_median_db=float(np.median([r.change_db for r in runs])), centroid_hz=hz, width_oct=width)


def run_grid(bundle, clips: list[tuple[str, np.ndarray]], settings=None, quiet_settings=None,
             progress=None, seed: int = 0) -> list[SettingSummary]:
    """Every clip (normalised to -3 dBFS) through every setting (and the quiet copies through
    ``quiet_settings``) -> one :class:`SettingSummary` per setting, in order."""
    from vqblur.engine.core import Engine

    settings = GRID if settings is None else settings
    quiet_settings = QUIET_SETTINGS if quiet_settings is None else quiet_settings
    eng = Engine(bundle, seed=seed) if not hasattr(bundle, "process") else bundle
    sr = eng.sample_rate
    fb, centres = mel_filterbank(sr)
    clips = [(n, normalise(a)) for n, a in clips]
    jobs = [(s, False) for s in settings] + [(s, True) for s in quiet_settings]
    out = []
    for s, quiet in jobs:
        runs = []
        for name, x in clips:
            xi = (x * np.float32(10 ** (QUIET_DB / 20))) if quiet else x
            y = render(eng, xi, s, seed=seed)
            f = compare(xi, y, sr, fb)
            runs.append(RunFigures(clip=name, setting=setting_label(s), quiet=quiet, level_db=f["level_db"],
                                   peak=f["peak"], limited=f["peak"] > KNEE, flux_ratio=f["flux_ratio"],
                                   change_db=f["change_db"], band_change_db=f["band_change_db"]))
            if progress is not None:
                progress()
        out.append(summarise(runs, s, centres))
    return out


def as_dicts(rows: list[SettingSummary]) -> list[dict]:
    return [asdict(r) for r in rows]
