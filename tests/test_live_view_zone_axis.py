"""The live view outlines the zone on the engine's own axis: for every knob value, the rows it
draws as the zone are the rows the engine resamples, also for a bundle on the split framing
(codec v5: its model bins are not evenly spaced), and the axis survives the trip to the view
process (its command line)."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from vqblur.engine.bundle import default_bundle_path
from vqblur.engine.core import KNOBS, Engine
from vqblur.engine.stage.tap import ColumnTap
from vqblur.engine.stage.view import LiveView, ViewState, parse_zone_axis, zone_axis_args, zone_axis_of

SIZES = (0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
CENTRES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 0.9)


def _view_zone(engine: Engine, zone_axis):
    view = LiveView(ViewState(KNOBS), ColumnTap(engine.config.rows, capacity=1024),
                    console=Console(file=None, force_terminal=True, width=120, height=40),
                    zone_axis=zone_axis)
    return view.zone


def _through_the_command_line(zone_axis):
    args = zone_axis_args(zone_axis)
    got = dict(zip(args[::2], args[1::2]))
    return parse_zone_axis(got["--zone-axis"], got.get("--zone-bins"))


def _mismatches(engine: Engine, view_zone) -> list[tuple[float, float]]:
    bad = []
    for size in SIZES:
        for centre in CENTRES:
            engine.zone.update(size, centre)
            view_zone.update(size, centre)
            if not np.array_equal(engine.zone.micro_rows, view_zone.micro_rows):
                bad.append((size, centre))
    return bad


def test_the_shipped_bundle_outlines_the_engines_rows():
    eng = Engine(default_bundle_path())
    axis = zone_axis_of(eng)
    assert axis[4] is None  # evenly spaced bins: no list of them
    assert _mismatches(eng, _view_zone(eng, _through_the_command_line(axis))) == []


@pytest.fixture(scope="module")
def split_engine(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from vqblur.export.testing import TINY_V5_AUDIO, TINY_V5_MODEL

    from tests.model_checks import export_tiny_bundle

    _, bundle = export_tiny_bundle(tmp_path_factory.mktemp("v5view"), audio=TINY_V5_AUDIO, **TINY_V5_MODEL)
    return Engine(bundle)


def test_a_split_framing_bundle_outlines_the_engines_rows(split_engine):
    eng = split_engine
    axis = zone_axis_of(eng)
    centres, spacings = axis[4]
    assert len(centres) == len(spacings) == eng.config.model_bins == 190
    assert centres[39] == 1462.5 and centres[40] == 1500.0  # the long window's bins, then the short's
    via_args = _through_the_command_line(axis)
    assert np.allclose(via_args[4][0], centres) and np.allclose(via_args[4][1], spacings)
    assert _mismatches(eng, _view_zone(eng, via_args)) == []


def test_an_even_grid_in_place_of_the_split_bins_would_outline_other_rows(split_engine):
    """The check above can fail: the view's former stand-in for the split bins (an even grid at
    the long window's 37.5 Hz up to the top bin) outlines other rows at some knob values."""
    eng = split_engine
    cfg = eng.config
    top = float(cfg.model_bin_hz()[0][-1])
    bins = int(round(top * cfg.long_n_fft / cfg.sample_rate)) + 1
    even = (cfg.sample_rate, cfg.long_n_fft, bins, [float(e) for e in eng.zone.row_edges_hz], None)
    bad = _mismatches(eng, _view_zone(eng, even))
    print(f"{len(bad)} of {len(SIZES) * len(CENTRES)} knob settings outline other rows: {bad}")
    assert len(bad) > 0
