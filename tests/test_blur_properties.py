"""Properties of the Naive Bayes zone blur (streaming ZoneSampler and offline blur_grid)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vqblur.engine.blur import (
    OFFSETS_8,
    NBTable,
    ZoneSampler,
    blur_grid,
    zone_probabilities,
)

K, R = 12, 10


def random_table(seed=0, K=K, R=R, concentration=0.5):
    """A proper NB table (each conditional sums to 1) with random, fairly peaky factors."""
    rng = np.random.default_rng(seed)
    return NBTable(
        log_prior=np.log(rng.dirichlet(np.full(K, 2.0))),
        log_row=np.log(rng.dirichlet(np.ones(R), size=K).T),  # [R, K], sums over rows
        log_neigh=np.log(rng.dirichlet(np.full(K, concentration), size=(8, K))).transpose(0, 2, 1),
        offsets=np.array(OFFSETS_8),
    )


TABLE = random_table()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
knob = st.floats(0.0, 1.0)


def _entropy(samples):
    p = np.bincount(samples, minlength=K) / len(samples)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@SETTINGS
@given(seed=st.integers(0, 2**16), centre=knob, temperature=knob, n=st.integers(1, 6))
def test_zone_size_zero_changes_nothing(seed, centre, temperature, n):
    rng = np.random.default_rng(seed)
    s = ZoneSampler(TABLE, R, seed=seed)
    for _ in range(n):
        col = rng.integers(0, K, R)
        out = np.empty_like(col)
        assert (s.step(col, 0.0, centre, temperature) == col).all()
        assert (s.step(col, 0.0, centre, temperature, out=out) == col).all()
    grid = rng.integers(0, K, (R, 15))
    assert (blur_grid(grid, TABLE, (None, centre, 0.0), temperature, sweeps=2, seed=seed) == grid).all()


@SETTINGS
@given(seed=st.integers(0, 2**16), size=knob, centre=knob, temperature=knob)
def test_streaming_cells_outside_the_zone_never_change(seed, size, centre, temperature):
    rng = np.random.default_rng(seed)
    s = ZoneSampler(TABLE, R, seed=seed)
    outside = zone_probabilities(R, 1, None, centre, size)[:, 0] == 0.0
    for _ in range(8):
        col = rng.integers(0, K, R)
        out = s.step(col, size, centre, temperature)
        assert out.shape == col.shape and out.dtype == col.dtype
        assert (out[outside] == col[outside]).all()
        assert ((out >= 0) & (out < K)).all()


@SETTINGS
@given(
    seed=st.integers(0, 2**16),
    mask=st.lists(st.floats(0.0, 1.0), min_size=R * 9, max_size=R * 9),
    zeros=st.lists(st.booleans(), min_size=R * 9, max_size=R * 9),
    temperature=knob,
    sweeps=st.integers(1, 3),
)
def test_offline_cells_outside_the_zone_never_change(seed, mask, zeros, temperature, sweeps):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, K, (R, 9))
    prob = np.array(mask).reshape(R, 9) * ~np.array(zeros).reshape(R, 9)
    out = blur_grid(grid, TABLE, prob, temperature, sweeps=sweeps, seed=seed)
    assert out.shape == grid.shape
    assert (out[prob == 0] == grid[prob == 0]).all()


@SETTINGS
@given(seed=st.integers(0, 2**16), a=st.integers(0, 30), length=st.integers(0, 12),
       size=knob, centre=knob)
def test_offline_time_span_zone(seed, a, length, size, centre):
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, K, (R, 30))
    out = blur_grid(grid, TABLE, ((a, a + length), centre, size), 0.7, sweeps=2, seed=seed)
    prob = zone_probabilities(R, 30, (a, a + length), centre, size)
    assert (prob[:, :a] == 0).all() and (prob[:, a + length :] == 0).all()
    assert (out[prob == 0] == grid[prob == 0]).all()


def test_temperature_zero_is_deterministic_and_seed_free():
    rng = np.random.default_rng(1)
    cols = rng.integers(0, K, (20, R))
    outs = []
    for seed in (0, 1, 99):
        s = ZoneSampler(TABLE, R, seed=seed)
        outs.append(np.array([s.step(c, 0.35, 0.4, 0.0) for c in cols]))
    assert (outs[0] == outs[1]).all() and (outs[0] == outs[2]).all()
    assert (outs[0] != cols).any()  # it did resample something
    grid = rng.integers(0, K, (R, 25))
    g = [blur_grid(grid, TABLE, ((3, 20), 0.5, 0.4), 0.0, sweeps=3, seed=seed) for seed in (0, 5)]
    assert (g[0] == g[1]).all() and (g[0] != grid).any()


def test_same_seed_same_output_and_reset_restarts():
    rng = np.random.default_rng(2)
    cols = rng.integers(0, K, (10, R))
    a, b = ZoneSampler(TABLE, R, seed=7), ZoneSampler(TABLE, R, seed=7)
    ra = [a.step(c, 0.5, 0.5, 0.8).copy() for c in cols]
    rb = [b.step(c, 0.5, 0.5, 0.8).copy() for c in cols]
    a.reset()
    rc = [a.step(c, 0.5, 0.5, 0.8).copy() for c in cols]
    assert all((x == y).all() and (x == z).all() for x, y, z in zip(ra, rb, rc))
    c = ZoneSampler(TABLE, R, seed=8)
    assert any((x != c.step(col, 0.5, 0.5, 0.8)).any() for x, col in zip(ra, cols))


def test_entropy_rises_with_temperature():
    col = np.random.default_rng(3).integers(0, K, R)
    s = ZoneSampler(TABLE, R, seed=0)
    ent = []
    for t in (0.0, 0.3, 0.6, 1.0):
        samples = []
        for _ in range(300):
            s.reset(seed=len(samples) + 1000 * len(ent))  # no history: i.i.d. draws
            samples.append(s.step(col, 1.0, 0.5, t))
        samples = np.array(samples)
        ent.append(np.mean([_entropy(samples[:, r]) for r in range(R)]))
    assert ent[0] == 0.0
    assert ent[0] < ent[1] < ent[2] < ent[3], ent
    # offline: entropy of each cell's code across seeds, averaged over the cells
    grid = np.random.default_rng(4).integers(0, K, (R, 8))
    g_ent = []
    for t in (0.0, 0.4, 1.0):
        outs = np.array([blur_grid(grid, TABLE, (None, 0.5, 1.0), t, sweeps=2, seed=k)
                         for k in range(60)])
        g_ent.append(np.mean([_entropy(outs[:, r, c]) for r in range(R) for c in range(8)]))
    assert g_ent[0] == 0.0 and g_ent[0] < g_ent[1] < g_ent[2], g_ent


def _implying_table(v_star=3, c_star=5, p=0.9):
    """Every neighbour with code v_star says 'the centre is c_star' (odds ~ 90:1 each)."""
    log_neigh = np.empty((8, K, K))
    for c in range(K):
        q = np.full(K, (1 - (p if c == c_star else 0.01)) / (K - 1))
        q[v_star] = p if c == c_star else 0.01
        log_neigh[:, :, c] = np.log(q)
    return NBTable(log_prior=np.full(K, -np.log(K)), log_row=np.full((R, K), -np.log(R)),
                   log_neigh=log_neigh, offsets=np.array(OFFSETS_8))


def test_a_strongly_predicting_neighbourhood_yields_its_code():
    table = _implying_table()
    rng = np.random.default_rng(5)
    # offline: one cell in a field of 3s, any seed, moderate temperature
    for seed in range(5):
        grid = np.full((R, 12), 3)
        grid[4, 6] = rng.integers(0, K)
        prob = np.zeros(grid.shape)
        prob[4, 6] = 1.0
        out = blur_grid(grid, table, prob, 0.5, sweeps=2, seed=seed)
        assert out[4, 6] == 5 and (out[prob == 0] == 3).all()
    # streaming: a one-row zone (centre row 4) in columns of 3s
    s = ZoneSampler(table, R, seed=1)
    centre = 4 / (R - 1)
    outs = []
    for _ in range(20):
        col = np.full(R, 3)
        col[4] = rng.integers(0, K)
        outs.append(s.step(col, 0.05, centre, 0.5)[4])
    assert outs.count(5) >= 19, outs


@pytest.mark.parametrize("size, centre, temperature", [
    (float("nan"), 0.5, 0.5), (float("inf"), 0.5, 0.5), (0.3, float("nan"), 0.5),
    (0.3, float("-inf"), 0.5), (0.3, 7.0, 0.5), (0.3, 0.5, float("nan")), (0.3, 0.5, -2.0),
    (-1.0, 0.5, 0.5), (5.0, -3.0, 40.0),
])
def test_odd_knob_values_never_break_a_step(size, centre, temperature):
    s = ZoneSampler(TABLE, R, seed=0)
    col = np.arange(R) % K
    for _ in range(3):
        out = s.step(col, size, centre, temperature)
        assert out.shape == (R,) and ((out >= 0) & (out < K)).all()
