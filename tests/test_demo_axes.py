"""The demo picture's frequency axis runs from 0 Hz to the Nyquist frequency (24 kHz at the
model's 48 kHz) on the knobs' perceptual axis (vqblur.common.freqaxis), the automated centre
stays within the demo clip's range, and only knobs that move are called automated."""

import numpy as np
import pytest

from vqblur.commands.demo import DEMO_AUTOMATION, make_figure
from vqblur.common.freqaxis import KNOB_AXIS_BREAK_HZ, warp_hz
from vqblur.engine.automation import parse_breakpoints
from vqblur.measure.spectrogram import knob_axis_ticks, to_knob_axis

SR = 48000


@pytest.fixture(scope="module")
def figure():
    import matplotlib.pyplot as plt

    n = SR
    x = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(n) / SR)).astype(np.float32)
    fig = make_figure(SR, x, x, x, parse_breakpoints(DEMO_AUTOMATION, "demo"), n / SR)
    yield fig
    plt.close(fig)


def test_spectrograms_reach_the_nyquist_frequency(figure):
    panels = [ax for ax in figure.axes if ax.get_images()]
    assert len(panels) == 3
    for ax in panels:
        assert ax.get_ylim() == pytest.approx((0.0, 1.0))  # the whole knob axis
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[0] == "0" and labels[-1] == "24k", labels
        _, _, lo, hi = ax.get_images()[0].get_extent()
        assert lo <= 0.0 and hi >= 1.0


def test_knob_axis_ticks_and_resampling():
    pos, labels = knob_axis_ticks(SR / 2)
    assert labels == ["0", "150", "500", "1k", "2k", "5k", "10k", "24k"]
    assert pos[0] == 0.0 and pos[-1] == pytest.approx(1.0) and np.all(np.diff(pos) > 0)
    # a tone at 1 kHz lands at the height of 1 kHz on the axis
    freqs = np.linspace(0, SR / 2, 1025)
    s = np.full((len(freqs), 3), -100.0)
    s[np.argmin(np.abs(freqs - 1000))] = 0.0
    img = to_knob_axis(s, freqs, SR / 2, points=400)
    row = int(np.argmax(img[:, 0]))
    assert warp_hz(row / 399, KNOB_AXIS_BREAK_HZ, SR / 2) == pytest.approx(1000, rel=0.05)


def test_automation_moves_what_it_names_and_keeps_the_centre_in_the_clips_range():
    auto = parse_breakpoints(DEMO_AUTOMATION, "demo")
    for knob, (_, values) in auto.curves.items():
        assert np.ptp(values) > 0, f"{knob} is listed as automated but never moves"
    assert "mix" not in auto.curves
    top = warp_hz(max(auto.curves["centre"][1]), KNOB_AXIS_BREAK_HZ, SR / 2)
    assert 1000 < top < 4000, top  # the demo clip: 99 % of its energy below 4.7 kHz
