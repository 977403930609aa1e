"""Property tests (hypothesis): invariants that must hold for every input, not just examples.

* Block-size invariance: any partition of a signal into blocks (sizes 1..4096, drawn by
  hypothesis) gives the same output as one call, within 1e-6 -- with the blur active (toy
  bundle, zone 0.6, temperature 0.7, mix 0.8), in stereo, and through the resampler.
  ``reset()`` makes the engine as new (same output again).
* The MIDI callback never raises on arbitrary byte lists (or arbitrary integers) and keeps
  its counters consistent; every (channel, CC) value stays in -1..127.
* The safety limiter is bounded, monotonic and transparent below its knee, for any floats.
* Knob snapshots (Params) clamp any number into 0..1 and refuse NaN.
* Automation breakpoints and presets built from arbitrary JSON-like data either parse or raise
  the user-facing error (UserError / PresetError), nothing else.

(The NB sampler's "never touches cells outside the zone" property is in the blur tests.)
Small ``max_examples`` and ``deadline=None``: the machine is shared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.automation import parse_breakpoints
from vqblur.engine.core import LIMIT_KNEE, Engine, Params, soft_limit
from vqblur.engine.stage.midi import KnobReader, MidiInput, load_controller_map
from vqblur.engine.presets import parse_preset
from vqblur.engine.resample import make_engine
from vqblur.common.errors import PresetError, UserError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow])
N = 6000
huge_ints = st.integers(-(10**400), 10**400)  # JSON/TOML integers have no size limit in Python


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def _signal(channels):
    rng = np.random.default_rng(42)
    t = np.arange(N) / 48000
    x = 0.3 * np.sin(2 * np.pi * 330 * t)[:, None] + 0.05 * rng.standard_normal((N, channels))
    x[2000:2100] *= 8.0  # a hot burst: the limiter is in the path too
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def engines(toy):
    p = Params(zone_size=0.6, temperature=0.7, centre=0.4, mix=0.8)
    out = {}
    for name, make, ch in (
        ("mono", lambda: Engine(toy, p, seed=3), 1),
        ("stereo", lambda: Engine(toy, p, channels=2, seed=3), 2),
        ("resampled-44k1", lambda: make_engine(toy, sample_rate=44100, params=p, seed=3), 1),
    ):
        eng = make()
        x = _signal(ch)
        x = x[:, 0] if ch == 1 else x
        ref = eng.process(x)
        out[name] = (eng, x, ref)
    return out


def _partition(total, cuts):
    """Block sizes from sorted cut points, each block 1..4096."""
    edges = sorted({c for c in cuts if 0 < c < total})
    sizes = np.diff([0, *edges, total])
    res = []
    for s in sizes:
        while s > 4096:
            res.append(4096)
            s -= 4096
        res.append(int(s))
    return res


@settings(max_examples=12, **SETTINGS)
@given(cuts=st.lists(st.integers(1, N - 1), min_size=0, max_size=40),
       name=st.sampled_from(["mono", "stereo", "resampled-44k1"]))
def test_block_size_invariance_for_any_partition(engines, cuts, name):
    eng, x, ref = engines[name]
    eng.reset()
    pieces = []
    a = 0
    for s in _partition(len(x), cuts):
        if s % 3 == 0:  # empty blocks in between change nothing
            assert len(eng.process(x[a:a])) == 0
        pieces.append(eng.process(x[a : a + s]))
        a += s
    y = np.concatenate(pieces)
    assert y.shape == ref.shape
    assert np.max(np.abs(y - ref)) <= 1e-6


@settings(max_examples=6, **SETTINGS)
@given(sizes=st.lists(st.integers(1, 64), min_size=5, max_size=60))
def test_tiny_blocks_match_too(engines, sizes):
    eng, x, ref = engines["mono"]
    eng.reset()
    n = min(sum(sizes), len(x))
    pieces, a = [], 0
    for s in sizes:
        if a >= n:
            break
        pieces.append(eng.process(x[a : min(n, a + s)]))
        a += s
    y = np.concatenate(pieces)
    assert np.max(np.abs(y - ref[: len(y)])) <= 1e-6


# --------------------------------------------------------------------------- MIDI
def _consistent(m):
    c = m.counters()
    assert c["received"] == c["cc"] - c["unmapped"] + c["ignored"]
    assert c["ignored"] == (c["sysex"] + c["malformed"] + c["unmapped"] + c["other"]
                            + c["callback_errors"])
    assert -1 <= m.cc_value.min() and m.cc_value.max() <= 127


@pytest.fixture(scope="module")
def midi():
    m = MidiInput(api="jack", client_name="vqprop")
    reader = KnobReader(m, load_controller_map("generic"), Params().as_dict())
    return m, reader


@settings(max_examples=200, **SETTINGS)
@given(msgs=st.lists(st.lists(st.integers(0, 255), max_size=12), max_size=20))
def test_midi_callback_never_raises_on_byte_lists(midi, msgs):
    m, reader = midi
    for msg in msgs:
        m._callback((msg, 0.0), None)
    assert m.callback_errors == 0
    _consistent(m)
    assert all(0.0 <= v <= 1.0 for v in reader.read().values())


@settings(max_examples=100, **SETTINGS)
@given(msgs=st.lists(st.lists(st.integers(-2**70, 2**70), max_size=6), max_size=10))
def test_midi_callback_never_raises_on_any_integers(midi, msgs):
    m, reader = midi
    for msg in msgs:
        m._callback((msg, 0.0), None)
    _consistent(m)
    assert all(0.0 <= v <= 1.0 for v in reader.read().values())


# --------------------------------------------------------------------------- limiter, knobs
@settings(max_examples=60, **SETTINGS)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=50))
def test_soft_limit_bounded_monotonic_transparent(vals):
    y = np.array(vals, dtype=np.float64)
    out = soft_limit(y.copy())
    assert np.isfinite(out).all() and np.max(np.abs(out)) <= 1.0
    fin = np.isfinite(y)
    small = fin & (np.abs(y) <= LIMIT_KNEE)
    assert np.array_equal(out[small], y[small])
    order = np.argsort(y[fin], kind="stable")
    assert np.all(np.diff(out[fin][order]) >= 0)


@settings(max_examples=60, **SETTINGS)
@given(st.dictionaries(st.sampled_from(["zone_size", "temperature", "centre", "mix", "bypass"]),
                       st.floats(allow_nan=True, allow_infinity=True) | huge_ints))
def test_params_clamp_or_refuse(kw):
    try:
        p = Params(**kw)
    except ValueError:
        assert any(isinstance(v, float) and v != v for v in kw.values())  # only NaN is refused
        return
    assert all(0.0 <= v <= 1.0 for v in p.as_dict().values())


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | huge_ints | st.floats() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=12,
)
breakpoint_like = st.lists(
    st.dictionaries(st.sampled_from(["time", "zone_size", "mix", "bypass", "other"]),
                    st.floats() | st.integers() | huge_ints | st.text(max_size=3) | st.none(),
                    max_size=4),
    max_size=5,
)


@settings(max_examples=150, **SETTINGS)
@given(data=json_like | breakpoint_like)
def test_automation_from_any_json_parses_or_is_a_user_error(data):
    try:
        a = parse_breakpoints(data, "fuzz.json")
    except UserError as exc:
        assert str(exc).startswith("fuzz.json")
        return
    for t in (0.0, 0.5, 1e9):
        for v in a.values_at(t).values():
            assert 0.0 <= v <= 1.0


preset_like = st.dictionaries(
    st.sampled_from(["name", "description", "knobs", "controller", "x"]),
    json_like | st.dictionaries(st.sampled_from(["zone_size", "mix", "map", "warp"]),
                                st.floats() | st.integers() | huge_ints | st.text(max_size=4)
                                | st.booleans()),
    max_size=4,
)


@settings(max_examples=150, **SETTINGS)
@given(data=preset_like)
def test_preset_from_any_table_parses_or_is_a_preset_error(data):
    try:
        p = parse_preset(data, "fuzz.toml")
    except PresetError as exc:
        assert str(exc).startswith("fuzz.toml")
        return
    assert all(0.0 <= v <= 1.0 for v in p.params.as_dict().values())
