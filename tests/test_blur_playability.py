"""Blur v2's playability properties on a few held-out real recordings (five, spread over the held-out set: not one tuned clip), over
a small knob grid, on the shipped bundle: the level stays where it was (and the limiter idle),
also on a quiet copy; the output is no rougher than the input (spectral flux); the change grows
with zone size on both maps; it lies where the centre says; temperature changes the character,
not the level; and the offline blur agrees with the streaming engine on level."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vqblur.cli import main
from vqblur.common.recordings import test_set as real_test_set
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import Engine, Params
from vqblur.measure import playability as P
from vqblur.training.data.folder import read_mono

SR = 48000


@pytest.fixture(scope="module")
def clips():
    recs = real_test_set()
    if len(recs) < 8:
        pytest.skip("the packaged recordings are not installed")
    picked = [recs[i] for i in np.linspace(2, len(recs) - 3, 5).astype(int)]  # spread over the test set
    return P.pick_clips([(r.name, read_mono(r.path, SR)[0]) for r in picked], 5, 2.0, SR)


@pytest.fixture(scope="module")
def engine():
    return Engine(load_bundle(default_bundle_path()), seed=0)


def _fig(engine, x, **knobs):
    s = {"zone_size": 0.3, "centre": 0.5, "temperature": 0.5, "detail": 1.0, "scale": 0.0, **knobs}
    y = P.render(engine, x, s)
    return P.compare(x, y, SR)


GRID = [dict(zone_size=0.3, centre=0.15), dict(zone_size=1.0, temperature=0.9), dict(zone_size=0.5, scale=1.0),
        dict(zone_size=0.3, detail=0.0), dict(zone_size=0.3, temperature=0.1)]


def test_level_holds_and_the_limiter_stays_idle(engine, clips):
    """Over clips x settings x (loud, a copy 30 dB down): every run within 3 dB of the input's
    level, the median within 1 dB, and at most 5 % of the runs past the limiter's knee (the
    playability targets)."""
    levels, limited = [], 0
    for knobs in GRID:
        for quiet in (False, True):
            for name, x in clips:
                x = P.normalise(x)
                if quiet:
                    x = (x * np.float32(10 ** (P.QUIET_DB / 20))).astype(np.float32)
                f = _fig(engine, x, **knobs)
                assert abs(f["level_db"]) <= 3.0, (name, knobs, quiet, f["level_db"])
                levels.append(f["level_db"])
                limited += f["peak"] > P.KNEE
    assert np.median(np.abs(levels)) <= 1.0
    assert limited <= 0.05 * len(levels), (limited, len(levels))


@pytest.mark.parametrize("knobs", [dict(zone_size=0.3), dict(zone_size=0.5, scale=1.0), dict(zone_size=1.0)])
def test_no_rougher_than_the_input(engine, clips, knobs):
    flux = [_fig(engine, P.normalise(x), **knobs)["flux_ratio"] for _, x in clips]
    # the target is the median's; the per-clip cap catches a blur that flickers on any one clip.
    # The roughest here is a sustained ambient piano (the least input flux of the five): 1.32 at
    # zone 1 since the blur holds codes 160 ms and changes ~25 % more (1.25 before)
    assert np.median(flux) <= 1.05 and max(flux) <= 1.4, flux


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_change_grows_steadily_with_zone_size(engine, clips, scale):
    zones = (0.1, 0.3, 0.5, 1.0)
    med = [0.0] + [float(np.median([_fig(engine, P.normalise(x), zone_size=z, scale=scale)["change_db"]
                                    for _, x in clips])) for z in zones]
    steps = np.diff(med)
    assert steps.min() >= -0.5 and steps.max() <= 8.0, med
    assert med[-1] > med[1] + 0.5, med  # and it does grow


def test_the_change_lies_where_the_centre_says(engine, clips):
    _, centres = P.mel_filterbank(SR)

    def centroid(c):
        bands = np.median([_fig(engine, P.normalise(x), zone_size=0.1, centre=c)["band_change_db"]
                           for _, x in clips], axis=0)
        return P.centroid(bands, centres)[0]

    low, mid, high = centroid(0.2), centroid(0.5), centroid(0.8)
    assert low < 1000 < mid < 4000 < high, (low, mid, high)


@pytest.mark.parametrize("zone,centre", [(0.1, 0.2), (0.1, 0.5), (0.3, 0.15)])
def test_the_change_stays_in_the_zone(engine, clips, zone, centre):
    """Per band, the zone's own mel bands change several times more than the rest: the blur
    re-textures where the knobs point and leaves the other bands (nearly) as they were."""
    _, centres = P.mel_filterbank(SR)
    inside = P.zone_band_weights({"zone_size": zone, "centre": centre}, centres,
                                 float(engine.zone.bin_hz[-1])) >= 0.5
    bands = np.median([_fig(engine, P.normalise(x), zone_size=zone, centre=centre)["band_change_db"]
                       for _, x in clips], axis=0)
    assert inside.sum() >= 5
    assert bands[inside].mean() >= 4.0 * bands[~inside].mean(), (bands[inside].mean(), bands[~inside].mean())


def test_in_zone_figures_read_the_zone_bands_only():
    """``summarise``: the in-zone change is the mean over the bands the zone covers by half, the
    zone centroid that of the zone's weights; an even change over the zone gives both exactly."""
    _, centres = P.mel_filterbank(SR)
    knobs = {"zone_size": 0.1, "centre": 0.2, "temperature": 0.5, "detail": 1.0, "scale": 0.0}
    w = P.zone_band_weights(knobs, centres, 24000.0)
    inside = w >= 0.5
    runs = [P.RunFigures(clip=f"c{i}", setting="s", quiet=False, level_db=0.0, peak=0.5, limited=False,
                         flux_ratio=1.0, change_db=float((3.0 * w).mean()), band_change_db=list(3.0 * w))
            for i in range(3)]
    row = P.summarise(runs, knobs, centres, 24000.0)
    assert row.zone_bands == int(inside.sum()) and 5 <= row.zone_bands <= 10
    assert row.zone_change_median_db == pytest.approx(3.0 * w[inside].mean())
    assert row.change_median_db < 0.25 * row.zone_change_median_db  # a few of 64 bands
    assert row.zone_centroid_hz == pytest.approx(row.centroid_hz)
    assert 300 < row.zone_centroid_hz < 500  # centre 0.2 is 374 Hz
    shut = P.summarise(runs, {**knobs, "zone_size": 0.0}, centres, 24000.0)
    assert shut.zone_bands == 0 and np.isnan(shut.zone_change_median_db)


def test_contrast_reads_roughness_along_frequency():
    """``compare``'s ``contrast_ratio``: a gain leaves it at 1, a comb's notches raise it, noise
    filling a harmonic tone's valleys lowers it; the flux (along time) of a steady sound is
    not what it reads."""
    rng = np.random.default_rng(5)
    noise = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    assert P.compare(noise, 2.0 * noise, SR)["contrast_ratio"] == pytest.approx(1.0)
    comb = noise + np.concatenate([np.zeros(24, np.float32), noise[:-24]])  # notches every 2 kHz
    assert P.compare(noise, comb, SR)["contrast_ratio"] > 1.3
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 30)).astype(np.float32)
    filled = tone + 0.05 * rng.standard_normal(SR).astype(np.float32)
    assert P.compare(tone, filled, SR)["contrast_ratio"] < 0.95


def test_temperature_changes_character_not_level(engine, clips):
    name, x = clips[0]
    x = P.normalise(x)
    cool, hot = _fig(engine, x, temperature=0.1), _fig(engine, x, temperature=0.9)
    assert abs(cool["level_db"] - hot["level_db"]) <= 1.5
    assert not np.allclose(cool["band_change_db"], hot["band_change_db"], atol=0.05)


def test_offline_blur_agrees_with_streaming_on_level(clips, tmp_path):
    name, x = clips[1]
    x = P.normalise(x)
    src = tmp_path / "in.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    knobs = ["--zone-size", "0.4", "--centre", "0.4", "--temperature", "0.6"]
    assert main(["blur", str(src), str(tmp_path / "b.wav"), "--quiet", *knobs]) == 0
    assert main(["process", str(src), str(tmp_path / "p.wav"), "--quiet", *knobs]) == 0
    yb, _ = sf.read(tmp_path / "b.wav")
    yp, _ = sf.read(tmp_path / "p.wav")

    def db(y):
        return 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum(x.astype(np.float64) ** 2))

    assert abs(db(yb)) <= 2.0 and abs(db(yp)) <= 2.0 and abs(db(yb) - db(yp)) <= 1.5
