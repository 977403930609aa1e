"""Is the blur an effect a musician can play? Level, limiter, flux and where the change lies,
over a grid of knob settings on real recordings (torch-free).

Every figure compares the engine's output (latency-compensated) with its input on a 64-band
mel power spectrogram (n_fft 1024, hop 256 at the model rate, HTK mel 0 Hz .. Nyquist) in dB,
floored 80 dB below the input's loudest cell (the same floor for both):

* ``level_db``: output energy against input energy, 10 log10(sum y^2 / sum x^2);
* ``limited``: the output went past the limiter's knee (|y| > 0.89: the limiter acted);
* ``flux_ratio``: spectral flux (mean |dB_t - dB_t-1| over bands and frames) of the output
  over the input's: above 1 the blur roughens, below 1 it smooths;
* ``contrast_ratio``: the same along frequency (mean |dB_b - dB_b-1| over neighbouring bands
  and frames), output over input: above 1 the blur carves peaks and holes into the spectrum
  (rougher in frequency), below 1 it evens it out. Information, not a target;
* ``change_db``: mean |dB_out - dB_in| over bands and frames: how audible the blur is;
* ``centroid_hz``: where the change lies: the mel band centroid of the per-band mean change
  (in mel, then in Hz); ``width_oct``: its spread, the weighted standard deviation in octaves;
* ``zone_change_db``: the change over the zone's own mel bands only (those the knobs' zone
  weight, on the knob axis, covers by at least half): how much the zone itself is changed,
  whatever its width (``change_db`` averages over all 64 bands, so a zone of a few bands needs
  a change of ``64 / bands`` times that inside it); ``zone_centroid_hz``: the centroid of the
  zone's own weights, the place a change spread evenly over the zone would have.

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
    d = {"zone_size": 0.3, "centre": 0.5, "temperature": 0.5, "detail": 1.0, "scale": 0.0, "smear": 0.0}
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
] + [  # the smear knob (off in every setting above)
    _base(zone_size=0.1, centre=0.15, smear=1.0), _base(zone_size=0.3, centre=0.5, smear=1.0),
    _base(zone_size=1.0, centre=0.5, smear=1.0),
]
#: ... and these on a quiet copy of each clip (30 dB down)
QUIET_SETTINGS: list[dict[str, float]] = [
    _base(zone_size=0.3, centre=0.15), _base(zone_size=0.3, centre=0.15, scale=1.0),
    _base(zone_size=1.0, temperature=0.9), _base(zone_size=1.0, temperature=0.9, smear=1.0),
]


def setting_label(s: dict[str, float]) -> str:
    smear = s.get("smear", 0.0)
    return (f"scale {s['scale']:g} centre {s['centre']:g} zone {s['zone_size']:g} "
            f"T {s['temperature']:g} detail {s['detail']:g}" + (f" smear {smear:g}" if smear else ""))


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
    contrast_ratio: float = 1.0  # spectral contrast along frequency, output / input


def compare(x: np.ndarray, y: np.ndarray, sr: int, fb=None) -> dict:
    """Input x and latency-aligned output y (same length, mono) -> the figures of one run."""
    fb = fb if fb is not None else mel_filterbank(sr)[0]
    px, py = mel_power(x, fb), mel_power(y, fb)
    floor = 10 * np.log10(max(px.max(), 1e-20)) - RANGE_DB
    dx = np.maximum(10 * np.log10(np.maximum(px, 1e-20)), floor)
    dy = np.maximum(10 * np.log10(np.maximum(py, 1e-20)), floor)
    fx = np.abs(np.diff(dx, axis=0)).mean() if len(dx) > 1 else 0.0
    fy = np.abs(np.diff(dy, axis=0)).mean() if len(dy) > 1 else 0.0
    cx, cy = np.abs(np.diff(dx, axis=1)).mean(), np.abs(np.diff(dy, axis=1)).mean()  # [T, bands]
    band = np.abs(dy - dx).mean(axis=0)
    ex, ey = float(np.sum(np.square(x, dtype=np.float64))), float(np.sum(np.square(y, dtype=np.float64)))
    return {"level_db": 10 * np.log10(max(ey, 1e-30) / max(ex, 1e-30)), "peak": float(np.abs(y).max()),
            "flux_ratio": float(fy / fx) if fx > 0 else 1.0, "change_db": float(band.mean()),
            "band_change_db": band, "contrast_ratio": float(cy / cx) if cx > 0 else 1.0}


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
    """The engine's output for mono x at constant knobs, latency-compensated to x's length
    (``Engine.render``); ``bundle`` may be an Engine, which is reused."""
    from vqblur.engine.core import Engine, Params

    if hasattr(bundle, "process"):
        bundle.set_params(Params(**setting))
        return bundle.render(x, block)
    return Engine(bundle, Params(**setting), seed=seed).render(x, block)


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
    zone_change_median_db: float = float("nan")  # over the zone's own mel bands (nan: zone shut)
    zone_bands: int = 0  # the mel bands the zone covers by at least half
    zone_centroid_hz: float = float("nan")  # the zone weights' own centroid
    contrast_median: float = float("nan")  # spectral contrast along frequency, output / input


def zone_band_weights(knobs: dict, centres_hz: np.ndarray, f_max: float) -> np.ndarray:
    """The zone's weight at each mel band centre ``[n_mels]`` for a setting's ``zone_size`` and
    ``centre``, on the engine's knob axis (top ``f_max``, the top model bin)."""
    from vqblur.engine.blur.sampler import zone_profile
    from vqblur.engine.knobs import knob_axis_position

    h = float(knobs.get("zone_size", 0.0))
    u = knob_axis_position(np.asarray(centres_hz, np.float64), f_max)
    return zone_profile(u - float(knobs.get("centre", 0.5)), h, h / 2.0)


def summarise(runs: list[RunFigures], knobs: dict, centres_hz: np.ndarray,
              f_max: float | None = None) -> SettingSummary:
    """Medians over one setting's runs; ``f_max`` (the top model bin; default the top mel
    centre) places the zone for the in-zone figures."""
    lv = np.array([r.level_db for r in runs])
    hz, width = centroid(np.median(np.stack([r.band_change_db for r in runs]), axis=0), centres_hz)
    w = zone_band_weights(knobs, centres_hz, float(f_max if f_max else centres_hz[-1]))
    inside = w >= 0.5
    zone_change = (float(np.median([np.mean(np.asarray(r.band_change_db)[inside]) for r in runs]))
                   if inside.any() else float("nan"))
    zone_hz = centroid(w, centres_hz)[0] if w.sum() > 0 else float("nan")
    return SettingSummary(
        setting=runs[0].setting, knobs=knobs, quiet=runs[0].quiet, runs=len(runs),
        level_median_abs_db=float(np.median(np.abs(lv))), level_worst_db=float(lv[np.argmax(np.abs(lv))]),
        limited_runs=int(sum(r.limited for r in runs)),
        flux_median=float(np.median([r.flux_ratio for r in runs])),
        change_median_db=float(np.median([r.change_db for r in runs])), centroid_hz=hz, width_oct=width,
        zone_change_median_db=zone_change, zone_bands=int(inside.sum()), zone_centroid_hz=zone_hz,
        contrast_median=float(np.median([r.contrast_ratio for r in runs])))


def run_grid(bundle, clips: list[tuple[str, np.ndarray]], settings=None, quiet_settings=None,
             progress=None, seed: int = 0, blur_version: int = 2) -> list[SettingSummary]:
    """Every clip (normalised to -3 dBFS) through every setting (and the quiet copies through
    ``quiet_settings``) -> one :class:`SettingSummary` per setting, in order. ``blur_version`` 1
    measures the previous blur (for before/after tables from one run)."""
    from vqblur.engine.core import Engine

    settings = GRID if settings is None else settings
    quiet_settings = QUIET_SETTINGS if quiet_settings is None else quiet_settings
    eng = (Engine(bundle, seed=seed, blur_version=blur_version) if not hasattr(bundle, "process")
           else bundle)
    sr = eng.sample_rate
    fb, centres = mel_filterbank(sr)
    f_max = float(eng.zone.bin_hz[-1]) if getattr(eng, "zone", None) is not None else sr / 2.0
    clips = [(n, normalise(a)) for n, a in clips]
    jobs = [(s, False) for s in settings] + [(s, True) for s in quiet_settings]
    return [summarise(run_setting(eng, clips, s, quiet, fb, progress, seed), s, centres, f_max)
            for s, quiet in jobs]


def run_setting(eng, clips: list[tuple[str, np.ndarray]], setting: dict[str, float], quiet: bool,
                fb: np.ndarray, progress=None, seed: int = 0) -> list[RunFigures]:
    """Every clip (already normalised; ``quiet``: its copy 30 dB down) through one setting of
    the engine ``eng`` -> one :class:`RunFigures` per clip (``fb``: :func:`mel_filterbank`)."""
    runs = []
    for name, x in clips:
        xi = (x * np.float32(10 ** (QUIET_DB / 20))) if quiet else x
        y = render(eng, xi, setting, seed=seed)
        f = compare(xi, y, eng.sample_rate, fb)
        runs.append(RunFigures(clip=name, setting=setting_label(setting), quiet=quiet, level_db=f["level_db"],
                               peak=f["peak"], limited=f["peak"] > KNEE, flux_ratio=f["flux_ratio"],
                               change_db=f["change_db"], band_change_db=f["band_change_db"],
                               contrast_ratio=f["contrast_ratio"]))
        if progress is not None:
            progress()
    return runs


def as_dicts(rows: list[SettingSummary]) -> list[dict]:
    return [asdict(r) for r in rows]


#: the short grid of ``vqblur bench --quick`` (a smoke run: the figures are not the targets')
QUICK_GRID: list[dict[str, float]] = [
    _base(zone_size=0.3, centre=0.15), _base(zone_size=0.3, centre=0.5),
    _base(zone_size=1.0, centre=0.5), _base(zone_size=0.3, centre=0.5, scale=1.0),
]
QUICK_QUIET: list[dict[str, float]] = [_base(zone_size=0.3, centre=0.15)]


def _find(rows: list[SettingSummary], quiet: bool = False, **knobs) -> SettingSummary | None:
    """The first run of these knobs (the smear off unless asked for)."""
    knobs.setdefault("smear", 0.0)
    for r in rows:
        if r.quiet == quiet and all(abs(r.knobs.get(k, 0.0) - v) < 1e-9 for k, v in knobs.items()):
            return r
    return None


def _zone_line(rows: list[SettingSummary], scale: float, centre: float) -> list[SettingSummary]:
    """The loud runs of one map and centre at temperature 0.5, detail 1, by zone size."""
    return sorted((r for r in rows if not r.quiet and r.knobs["scale"] == scale and r.knobs["centre"] == centre
                   and r.knobs["temperature"] == 0.5 and r.knobs["detail"] == 1.0
                   and not r.knobs.get("smear", 0.0)),
                  key=lambda r: r.knobs["zone_size"])


def check_targets(rows: list[SettingSummary], total_runs: int) -> list[dict]:
    """The playability targets (docs/MEASURING.md) over a grid's summaries: one dict per target
    with ``name``, ``ok`` (None when the grid lacks the settings it needs) and ``value``."""
    out = []

    def add(name, ok, value):
        out.append({"name": name, "ok": None if ok is None else bool(ok), "value": value})

    add("level: median |change| <= 1 dB at every setting",
        all(r.level_median_abs_db <= 1.0 for r in rows), max(r.level_median_abs_db for r in rows))
    add("level: worst clip x setting within 3 dB (quiet copies included)",
        all(abs(r.level_worst_db) <= 3.0 for r in rows), max(abs(r.level_worst_db) for r in rows))
    lim = sum(r.limited_runs for r in rows)
    add("limiter: at most 5 % of runs above the knee", lim <= 0.05 * total_runs, f"{lim} of {total_runs}")
    opened = [r for r in rows if r.knobs["zone_size"] > 0 and not r.quiet]
    cool = [r.flux_median for r in opened if r.knobs["temperature"] <= 0.5]
    hot = [r.flux_median for r in opened if r.knobs["temperature"] > 0.5]
    add("flux: median ratio <= 1.05 at temperature <= 0.5", all(v <= 1.05 for v in cool) if cool else None,
        max(cool) if cool else None)
    add("flux: median ratio <= 1.10 at temperature 0.9", all(v <= 1.10 for v in hot) if hot else None,
        max(hot) if hot else None)
    a = _find(rows, zone_size=0.3, centre=0.5, scale=0.0, temperature=0.5, detail=1.0)
    b = _find(rows, zone_size=0.1, centre=0.15, scale=0.0, temperature=0.5, detail=1.0)
    add("audible: change >= 2 dB at zone 0.3, centre 0.5", None if a is None else a.change_median_db >= 2.0,
        None if a is None else a.change_median_db)
    add("audible: change >= 1 dB at zone 0.1, centre 0.15", None if b is None else b.change_median_db >= 1.0,
        None if b is None else b.change_median_db)
    add("where: centroid 700 Hz .. 3 kHz at zone 0.3, centre 0.5",
        None if a is None else 700.0 <= a.centroid_hz <= 3000.0, None if a is None else a.centroid_hz)
    sm = _find(rows, zone_size=0.1, centre=0.15, scale=0.0, temperature=0.5, detail=1.0, smear=1.0)
    add("audible with the smear knob at 1: change >= 1 dB at zone 0.1, centre 0.15",
        None if sm is None else sm.change_median_db >= 1.0, None if sm is None else sm.change_median_db)
    lo = _find(rows, zone_size=0.1, centre=0.1, scale=0.0, temperature=0.5, detail=1.0)
    hi = _find(rows, zone_size=0.1, centre=0.2, scale=0.0, temperature=0.5, detail=1.0)
    if lo is None or hi is None:
        add("where: centres 0.1 / 0.2 an octave apart, both below 1.5 kHz", None, None)
    else:
        add("where: centres 0.1 / 0.2 an octave apart, both below 1.5 kHz",
            hi.centroid_hz >= 2 * lo.centroid_hz and max(lo.centroid_hz, hi.centroid_hz) < 1500.0,
            [lo.centroid_hz, hi.centroid_hz])
    steps = []
    for scale in (0.0, 1.0):
        for centre in (0.15, 0.5):
            ch = [0.0] + [r.change_median_db for r in _zone_line(rows, scale, centre)]
            steps += list(np.diff(ch))
    add("monotone: along zone size the change never drops > 0.5 dB, no step adds > 8 dB",
        (min(steps) >= -0.5 and max(steps) <= 8.0) if steps else None,
        [min(steps), max(steps)] if steps else None)
    return out


def curves(rows: list[SettingSummary]) -> dict:
    """For the figure: per map (scale) and centre, zone size -> change, level, flux and contrast
    along frequency (T 0.5, detail 1)."""
    out: dict = {}
    for scale in (0.0, 1.0):
        for centre in (0.15, 0.5):
            line = _zone_line(rows, scale, centre)
            if line:
                out[f"scale {scale:g}, centre {centre:g}"] = {
                    "zone_size": [0.0] + [r.knobs["zone_size"] for r in line],
                    "change_db": [0.0] + [r.change_median_db for r in line],
                    "level_db": [0.0] + [r.level_median_abs_db for r in line],
                    "flux": [1.0] + [r.flux_median for r in line],
                    "contrast": [1.0] + [r.contrast_median for r in line]}
    return out


def pick_clips(clips: list[tuple[str, np.ndarray]], n: int, seconds: float, sr: int) -> list[tuple[str, np.ndarray]]:
    """``n`` clips spread over the set, each its loudest ``seconds`` (100 ms steps)."""
    if not clips:
        return []
    idx = np.unique(np.linspace(0, len(clips) - 1, min(n, len(clips))).astype(int))
    L, hop = int(seconds * sr), sr // 10
    out = []
    for i in idx:
        name, a = clips[i]
        if len(a) > L:
            e = np.add.reduceat(np.square(a, dtype=np.float64), np.arange(0, len(a), hop))
            k = int(np.argmax(np.convolve(e, np.ones(max(1, L // hop)), "valid"))) * hop
            a = a[k:k + L]
        out.append((name, np.asarray(a, np.float32)))
    return out


def measure(bundle, clips: list[tuple[str, np.ndarray]], quick: bool = False, seed: int = 0,
            versions: tuple[int, ...] = (2,), log=lambda s: None) -> dict:
    """The bench's playability section: the grid for each blur version (2 = this engine's blur,
    1 = the previous one), its targets and curves."""
    settings, quiet = (QUICK_GRID, QUICK_QUIET) if quick else (GRID, QUIET_SETTINGS)
    res: dict = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "clips": [n for n, _ in clips],
                 "seconds_per_clip": (float(np.mean([len(a) for _, a in clips]) / getattr(bundle, "sample_rate", 48000))
                                      if clips else 0.0),
                 "quick": quick, "versions": {}}
    runs = len(clips) * (len(settings) + len(quiet))
    for v in versions:
        log(f"playability grid, blur v{v}: {len(clips)} clips x {len(settings) + len(quiet)} settings")
        rows = run_grid(bundle, clips, settings, quiet, seed=seed, blur_version=v)
        res["versions"][f"v{v}"] = {"rows": as_dicts(rows), "targets": check_targets(rows, runs),
                                    "curves": curves(rows)}
    return res


def format_table(section: dict) -> list[str]:
    """The playability table (text lines): per setting, after (v2) and, when measured, before
    (v1): median |level| / worst level, limiter runs, flux, change, centroid; then the targets."""
    vs = section.get("versions") or {}
    if "v2" not in vs:
        return []
    after = vs["v2"]["rows"]
    before = vs.get("v1", {}).get("rows")
    n = len(section.get("clips", []))
    head = (f"playability: {n} real recordings x {section.get('seconds_per_clip', 0):.1f} s, peaks at -3 dBFS "
            f"(Q = a copy 30 dB down); mel 64 bands; level = median |dB| / worst, lim = runs above the knee, "
            f"flux = output / input (con: the same along frequency), change = mean |dB| over all bands (in the zone's own bands), "
            f"centroid of the change (of the zone itself)")
    lines = [head]

    def cell(x):
        zc, zh = x.get("zone_change_median_db", float("nan")), x.get("zone_centroid_hz", float("nan"))
        return (f"{x['level_median_abs_db']:4.1f}/{x['level_worst_db']:+5.1f} lim {x['limited_runs']:2d} "
                f"flux {x['flux_median']:4.2f} con {x.get('contrast_median', float('nan')):4.2f} "
                f"chg {x['change_median_db']:4.1f} ({zc:4.1f}) "
                f"@{x['centroid_hz']:5.0f} ({zh:5.0f}) Hz")

    width = len(cell(after[0])) if after else 0
    cols = "after (blur v2)" + (" " * max(width + 3 - 15, 1) + "before (v1)" if before else "")
    lines.append(f"  {'setting':54s}  {cols}")
    for i, r in enumerate(after):
        lab = r["setting"] + (" Q" if r["quiet"] else "")
        lines.append(f"  {lab:54s}  {cell(r)}" + (f"   {cell(before[i])}" if before else ""))
    for t in vs["v2"]["targets"]:
        mark = "ok  " if t["ok"] else ("n/a " if t["ok"] is None else "MISS")
        val = t["value"]
        if isinstance(val, float):
            val = f"{val:.3g}"
        elif isinstance(val, list):
            val = " / ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in val)
        b = ""
        if before:
            tb = next((x for x in vs["v1"]["targets"] if x["name"] == t["name"]), None)
            if tb is not None:
                b = "   (v1: " + ("ok" if tb["ok"] else "n/a" if tb["ok"] is None else "miss") + ")"
        lines.append(f"  {mark} {t['name']}: {val}{b}")
    if section.get("quick"):
        lines.append("  (--quick: a short grid on two clips, a smoke run; the targets need the full grid)")
    return lines
