#!/usr/bin/env python
"""Probe one lever of blur v2's shaping on the playability measure, without changing the engine.

Patches module constants of ``vqblur.engine.blur.shaping`` (UPPER_CASE, e.g. ``GAIN_EDGE=1``)
or ``ChangeShaper`` keywords (lower_case, e.g. ``level_tau=0.03``, ``loop=0``) for this process
only, then runs a few of the grid's settings on the bench's 12 held-out recordings and prints
change, in-zone change, centroid, level, limiter runs and flux per setting, and for the small
low zones the change per mel band and the share of it above 600 Hz. ``--constant-gain`` instead
puts a fixed +6 dB on the model bins at 64-246 Hz through the bundle's STFT alone (no codec, no
shaping): how much of a low gain's change the framing and the measure put above 600 Hz.

    VQBLUR_DATA=data .venv/bin/python scripts/blur_levers.py presets/default_bundle GAIN_EDGE=1
    VQBLUR_DATA=data .venv/bin/python scripts/blur_levers.py presets/default_bundle --constant-gain

docs/BLUR.md ("Limits") quotes it.
"""

from __future__ import annotations

import argparse

import numpy as np

import vqblur.engine.blur.shaping as shaping
from vqblur.engine.bundle import load_bundle
from vqblur.measure import playability as P
from vqblur.measure import sets

SR = 48000
TAIL_HZ = 600.0


def patch(assignments: list[str]) -> None:
    """NAME=VALUE: UPPER_CASE sets a shaping constant, lower_case a ChangeShaper keyword."""
    kw = {}
    for a in assignments:
        name, value = a.split("=", 1)
        if name.isupper():
            if not hasattr(shaping, name):
                raise SystemExit(f"shaping has no constant {name}")
            setattr(shaping, name, float(value))
        else:
            kw[name] = int(value) if name == "bands" else float(value)
    if kw:
        init = shaping.ChangeShaper.__init__

        def patched(self, *a, **k):
            k.update(kw)
            init(self, *a, **k)

        shaping.ChangeShaper.__init__ = patched


def tail_share(band: np.ndarray, centres: np.ndarray) -> tuple[float, float]:
    """(share of the change's mass above TAIL_HZ, the centroid in Hz of the part below it)."""
    lo = centres < TAIL_HZ
    return float(band[~lo].sum() / max(band.sum(), 1e-12)), P.centroid(band[lo], centres[lo])[0]


def constant_gain(bundle, clips, fb, centres) -> None:
    from vqblur.engine.dsp import SignalConfig
    from vqblur.engine.split_stft import make_stft

    cfg = SignalConfig.from_bundle(bundle)
    f, _ = cfg.model_bin_hz()
    sel = (f >= 64.0) & (f <= 246.0)
    bands = []
    for _, x in clips:
        x = P.normalise(x).astype(np.float64)
        st, outs, block = make_stft(cfg, 1, max_block=4096), [], 4096
        for i in range(0, len(x) - block, block):
            st.push(x[i : i + block, None])
            while st.column_ready():
                lm = st.analyse_column().copy()
                lm[..., sel] += np.log(2.0)
                st.synthesise_column(lm)
            outs.append(st.pull(block).reshape(-1))
        y, d = np.concatenate(outs), st.latency
        bands.append(P.compare(x[: len(y) - d], y[d:], SR, fb)["band_change_db"])
    band = np.median(bands, axis=0)
    share, below = tail_share(band, centres)
    mid = band[(centres > TAIL_HZ) & (centres < 1200.0)].mean()
    print(f"constant +6 dB at 64-246 Hz: {band[centres < 300].mean():.2f} dB below 300 Hz, "
          f"{mid:.3f} dB per band at 600-1200 Hz, {100 * share:.0f} % of the change above {TAIL_HZ:g} Hz "
          f"(centroid below it {below:.0f} Hz)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("patches", nargs="*", help="NAME=VALUE (see above)")
    ap.add_argument("--constant-gain", action="store_true", help="the framing's own tail, no blur")
    args = ap.parse_args()
    patch(args.patches)
    bundle = load_bundle(args.bundle)
    clips = P.pick_clips(sets.real_set(SR).clips, 12, 3.0, SR)
    fb, centres = P.mel_filterbank(SR)
    if args.constant_gain:
        constant_gain(bundle, clips, fb, centres)
        return
    from vqblur.engine.core import Engine

    eng = Engine(bundle)
    f_max = float(eng.zone.bin_hz[-1])
    clips = [(n, P.normalise(a)) for n, a in clips]
    settings = [P._base(zone_size=0.1, centre=c) for c in (0.1, 0.15, 0.2)] + [
        P._base(zone_size=0.3, centre=0.15), P._base(zone_size=0.3, centre=0.5),
        P._base(zone_size=1.0, temperature=0.9)]
    low_bands = {}  # zone 0.1 @ centre: the median change per mel band
    for s in settings:
        runs = P.run_setting(eng, clips, s, False, fb)
        r = P.summarise(runs, s, centres, f_max)
        print(f"{r.setting:45s} change {r.change_median_db:.2f} in-zone {r.zone_change_median_db:.2f} "
              f"centroid {r.centroid_hz:.0f} Hz level {r.level_median_abs_db:.2f} / {r.level_worst_db:.2f} dB "
              f"limiter {r.limited_runs} flux {r.flux_median:.3f}")
        if s["zone_size"] == 0.1 and s["centre"] in (0.1, 0.2):
            low_bands[s["centre"]] = np.median([run.band_change_db for run in runs], axis=0)
    for c, band in low_bands.items():
        share, below = tail_share(band, centres)
        print(f"zone 0.1 @ {c:g}: {100 * share:.0f} % of the change above {TAIL_HZ:g} Hz; below it, centroid {below:.0f} Hz")
        print("  " + " ".join(f"{centres[i]:.0f}:{band[i]:.2f}" for i in range(18)))

if __name__ == "__main__":
    main()
