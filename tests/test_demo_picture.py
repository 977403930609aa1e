"""The demo picture: spectrogram panels cover 0 s to the end of the clip with no blank margin,
share one time axis with the knob panel, and carry a colour bar in dB."""

import numpy as np
import pytest

from vqblur.commands.demo import DEMO_AUTOMATION, make_figure, spectrogram_db
from vqblur.engine.automation import parse_breakpoints

SR = 48000


@pytest.fixture(scope="module")
def figure():
    import matplotlib.pyplot as plt

    seconds = 2.37  # not a multiple of the hop or the FFT size
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    auto = parse_breakpoints(DEMO_AUTOMATION, "demo automation")
    fig = make_figure(SR, x, 0.5 * x, 0.25 * x, auto, n / SR)
    yield fig, n / SR
    plt.close(fig)


def test_panels_span_exactly_the_clip(figure):
    fig, seconds = figure
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3
    for im in images:
        ax = im.axes
        lo, hi = ax.get_xlim()
        assert lo == pytest.approx(0.0) and hi == pytest.approx(seconds)
        left, right, _, _ = im.get_extent()
        assert left <= lo and right >= hi, "the spectrogram leaves a blank margin"
    knob_axes = [ax for ax in fig.axes if ax.get_lines()]
    assert knob_axes and all(ax.get_xlim() == pytest.approx((0.0, seconds)) for ax in knob_axes)


def test_colour_bar_in_db(figure):
    fig, _ = figure
    bars = [ax for ax in fig.axes if "dB" in ax.get_ylabel() and not ax.get_images() and not ax.get_lines()]
    assert len(bars) == 1, [ax.get_ylabel() for ax in fig.axes]
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert all(im.colorbar is not None and im.colorbar.ax is bars[0] for im in images[-1:])
    assert all(im.get_clim() == images[0].get_clim() for im in images)  # one scale for all panels


def test_spectrogram_db_scale_and_coverage():
    n = 10_000
    t = np.arange(n) / SR
    s_db, times, freqs = spectrogram_db(np.sin(2 * np.pi * 3000 * t), SR)
    assert times[0] == 0.0 and times[-1] >= n / SR
    k = int(np.argmin(np.abs(freqs - 3000)))
    assert s_db[k, len(times) // 2] == pytest.approx(0.0, abs=1.5)  # full-scale sine ~ 0 dB
    assert s_db.shape == (len(freqs), len(times))
