"""The live view's data path and picture, without a terminal or audio device:

* the engine's column tap records every column's codes before/after the blur (what the blur
  changed lies inside the zone), allocates no buffers, and does not change the audio;
* a frame rendered for a terminal shows the grid (codes, changed cells, the zone outline),
  the meters, every knob and the counters; a terminal too small gets the status line.

The view process in a real pseudo-terminal (tmux) on the JACK dummy server:
tests/test_live_view_jack.py.
"""

from __future__ import annotations

import io
import threading
import tracemalloc

import numpy as np
import pytest
from rich.console import Console

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.core import KNOBS, Engine, Params
from vqblur.engine.stage.runner import LiveRunner
from vqblur.engine.stage.tap import ColumnTap
from vqblur.engine.stage.view import LiveView, ViewPublisher, ViewState, min_size

SR = 48000
KNOBS_ON = dict(zone_size=0.2, temperature=0.7, centre=0.7, mix=1.0)  # rows 1..12 of 20 (perceptual axis)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)
    return x.astype(np.float32)


def test_tap_records_every_column_and_the_blur_stays_in_the_zone(toy):
    eng = Engine(toy, Params(**KNOBS_ON), seed=1)
    tap = ColumnTap(eng.config.rows, capacity=1024)
    eng.tap = tap
    x = signal(1.0)
    eng.process(x)
    assert tap.pos == eng.stats.columns > 250
    before, after, zone, centre = tap.history()
    R = eng.config.rows
    assert before.shape == (R, tap.pos)
    assert np.allclose(zone[-10:], KNOBS_ON["zone_size"]) and np.allclose(centre[-10:], KNOBS_ON["centre"])
    changed = before != after
    assert changed.sum() > 100
    eng.zone.update(KNOBS_ON["zone_size"], KNOBS_ON["centre"])  # the rows the engine resamples
    outside = eng.zone.micro_rows == 0
    assert outside.sum() >= 4
    assert not changed[outside, 50:].any()  # after the knobs settled: only zone rows change
    # a second channel's columns are not recorded by a channel-0 tap
    eng2 = Engine(toy, Params(**KNOBS_ON), channels=2, seed=1)
    tap2 = ColumnTap(R, capacity=1024, channel=1)
    eng2.tap = tap2
    eng2.process(np.stack([x, x], axis=1))
    assert tap2.pos == eng2.stats.columns


def test_tap_column_allocates_no_buffers():
    tap = ColumnTap(20, capacity=512)
    cols = np.random.default_rng(0).integers(0, 256, (600, 1, 20))
    for c in cols[:5]:
        tap.column(0, c, c, 0.3, 0.5)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for c in cols:
            tap.column(0, c, c, 0.3, 0.5)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1024, peak  # a view object now and then, no copy of the data


def test_tap_reader_drops_a_window_the_writer_lapped():
    tap = ColumnTap(4, capacity=8)
    col = np.arange(4)
    for i in range(5):
        tap.column(0, col + i, col + i, 0.0, 0.0)
    b, a = np.zeros((8, 4), np.int32), np.zeros((8, 4), np.int32)
    z, c = np.zeros(8, np.float32), np.zeros(8, np.float32)
    assert tap.latest(8, b, a, z, c) == 5
    assert b[-1, 0] == 4 and b[3, 0] == 0  # oldest first, the newest at the end
    for i in range(20):
        tap.column(0, col, col, 0.0, 0.0)
    assert tap.latest(8, b, a, z, c) == 8

    class Lapped(ColumnTap):
        """The writer wraps the whole ring between the reader's two looks at ``pos``."""

        looks = 0

        @property
        def pos(self):
            self.looks += 1
            return int(self._hdr[0]) + (self.capacity if self.looks % 2 == 0 else 0)

    lapped = Lapped(4, capacity=8)
    for i in range(5):
        lapped.column(0, col, col, 0.0, 0.0)
    lapped.looks = 0
    assert lapped.latest(8, b, a, z, c) == 0


def test_view_on_or_off_gives_the_same_audio(toy):
    """Same seed, same input: the engine with a tap (and a view thread rendering from it the
    whole time) produces bit-identical output to the engine without one."""
    x = signal(2.0, seed=3)
    ref = Engine(toy, Params(**KNOBS_ON), seed=7).process(x)
    eng = Engine(toy, Params(**KNOBS_ON), seed=7)
    tap = ColumnTap(eng.config.rows, capacity=2048)
    eng.tap = tap
    runner = LiveRunner(eng, samplerate=SR, channels=1)
    state = ViewState(KNOBS)
    pub = ViewPublisher(runner, state)
    view = LiveView(state, tap, console=_console(), band_hz=1200.0)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            pub.publish()
            view.console.print(view.render())

    t = threading.Thread(target=draw)
    t.start()
    try:
        y = np.concatenate([eng.process(x[i:i + 128]) for i in range(0, len(x), 128)])
    finally:
        stop.set()
        t.join()
    assert view.frames == 0 and view.errors == 0
    assert np.array_equal(y, ref)


def _console(width: int = 120, height: int = 40) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=width, height=height,
                   color_system="truecolor", record=True)


def _fed_view(toy, width=120, height=40):
    """A LiveRunner (not started) whose rings and engine tap hold 3 s of a played signal."""
    eng = Engine(toy, Params(**KNOBS_ON), seed=2)
    tap = ColumnTap(eng.config.rows, capacity=4096)
    eng.tap = tap
    runner = LiveRunner(eng, samplerate=SR, channels=1)
    x = signal(2.0, seed=4)[:, None]
    y = eng.process(x)
    runner.in_ring.write(x)
    runner.out_ring.write(y)
    runner.out_ring.advance_read(len(y))
    runner.host_block = runner.prefill = 128
    runner.knob_values = Params(**KNOBS_ON).as_dict()
    state = ViewState(KNOBS)
    ViewPublisher(runner, state).publish(cpu=12.5, dsp=7.5)
    cfg = eng.config
    return LiveView(state, tap, console=_console(width, height), band_hz=1200.0,
                    columns_per_second=SR / cfg.column_samples,
                    zone_axis=(cfg.sample_rate, cfg.n_fft, cfg.model_bins, eng.zone.row_edges_hz)), eng


def test_frame_shows_grid_changed_cells_zone_outline_meters_knobs(toy):
    view, eng = _fed_view(toy)
    view.console.print(view.render())
    text = view.console.export_text()
    lines = text.splitlines()
    print(text)
    R = eng.config.rows
    grid = [ln for ln in lines if len(ln) > 100 and ("×" in ln or ln.startswith("   ") or "k " in ln[:8])]
    assert len(grid) >= R - 1, text
    assert sum(ln.count("×") for ln in lines) > 50  # cells the blur changed
    # the zone outline: rows just outside the zone, at its top and its bottom
    eng.zone.update(KNOBS_ON["zone_size"], KNOBS_ON["centre"])  # the engine's own rows for the knobs
    on = np.flatnonzero(eng.zone.micro_rows)
    top, bottom = on[-1] + 1, on[0] - 1  # first row above / below the zone
    assert 0 <= bottom and top < R
    row_line = {R - 1 - i: ln for i, ln in enumerate(lines[1:1 + R])}
    assert row_line[top].count("▁") > 50 and row_line[bottom].count("▔") > 50, text
    assert "×" not in row_line[top] and "×" not in row_line[bottom]
    assert "◀" in row_line[eng.zone.centre_row(KNOBS_ON["centre"])]  # the current zone at the right edge
    e = eng.zone.row_edges_hz  # row labels (every 4th row) from the bundle's own row edges
    assert " 0.0k" in text and f"{e[4] / 1000:5.1f}k" in text and f"{e[8] / 1000:5.1f}k" in text
    meters = next(ln for ln in lines if ln.startswith("in "))
    assert "out" in meters and meters.count("dBFS") == 2 and "-inf" not in meters
    knobs = next(ln for ln in lines if ln.startswith("knobs"))
    for k in KNOBS:
        assert k in knobs
    assert "under-runs 0" in text and "DSP  7.5%" in text and "CPU 12.5%" in text and "latency" in text


def test_too_small_or_not_a_terminal_gives_the_status_line(toy):
    view, _ = _fed_view(toy)
    assert view.usable() == (True, "")
    w, h = min_size(view.rows)
    small = Console(file=io.StringIO(), force_terminal=True, width=w - 1, height=h + 10, record=True)
    view.console = small
    ok, why = view.usable()
    assert not ok and "smaller" in why
    small.print(view.render())
    out = small.export_text()
    assert "lat " in out and "zone_size" in out and "×" not in out and len(out.splitlines()) == 1
    view.console = Console(file=io.StringIO(), width=200, height=60)  # a file, not a terminal
    assert view.usable() == (False, "not a terminal")


def test_tap_and_state_shared_with_another_process(toy):
    """What the view process sees: a shared tap and state attached by name, in another process."""
    import subprocess
    import sys

    eng = Engine(toy, Params(**KNOBS_ON), seed=2)
    tap = ColumnTap(eng.config.rows, capacity=1024, shared=True)
    eng.tap = tap
    state = ViewState(KNOBS, shared=True)
    try:
        eng.process(signal(0.5))
        state["underruns"] = 7
        state.values[state._index["knob:" + KNOBS[0]]] = 0.25
        code = (
            "import sys; from vqblur.engine.stage.tap import ColumnTap; from vqblur.engine.stage.view import ViewState\n"
            "t = ColumnTap.attach(sys.argv[1]); s = ViewState(tuple(sys.argv[3].split(',')), _attach=sys.argv[2])\n"
            "b, a, z, c = t.history()\n"
            "print(t.pos, int((b != a).sum()), int(b.sum()), s['underruns'], s.knob(sys.argv[3].split(',')[0]))\n"
        )
        r = subprocess.run([sys.executable, "-c", code, tap.name, state.name, ",".join(KNOBS)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        b, a, _, _ = tap.history()
        assert r.stdout.split() == [str(tap.pos), str(int((b != a).sum())), str(int(b.sum())), "7.0", "0.25"]
    finally:
        tap.close(unlink=True)
        state.close(unlink=True)
