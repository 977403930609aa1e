"""A held zone (blur v2's ``hold``) redraws only the rows that are due, one by one; those draws
are exactly the ones the whole-zone pass makes (same factors, evidence, temperature and pool
noise), at every temperature the engine uses, with and without same-column neighbours; and the
row-by-row path allocates no buffers."""

import tracemalloc

import numpy as np
import pytest

from vqblur.engine.blur import OFFSETS_8, NBTable, ZoneSampler

K, R = 64, 20


def _table(offsets=OFFSETS_8, seed=0):
    rng = np.random.default_rng(seed)
    return NBTable(log_prior=np.log(rng.dirichlet(np.ones(K))).astype(np.float32),
                   log_row=np.log(rng.dirichlet(np.ones(K), size=R)).astype(np.float32),
                   log_neigh=np.log(rng.dirichlet(np.ones(K) * 0.3, size=(len(offsets), K)))
                   .transpose(0, 2, 1).astype(np.float32),
                   offsets=np.array(offsets))


def _run(few: int, hold: int, evidence: float, temperature: float, rows, offsets=OFFSETS_8):
    saved = ZoneSampler.FEW_ROWS
    ZoneSampler.FEW_ROWS = few
    try:
        s = ZoneSampler(_table(offsets), R, seed=5, evidence=evidence, hold=hold, past="input")
        p = np.zeros(R)
        p[rows] = 1.0
        s.set_rows(p)
        cols = np.random.default_rng(1).integers(0, K, (240, R))
        out = [s.step_rows(c, temperature).copy() for c in cols]
        p[:] = 0.0
        p[rows[:3]] = 1.0  # the zone shrinks mid-stream: the kept rows' schedule goes on
        s.set_rows(p)
        out += [s.step_rows(c, temperature).copy() for c in cols[:60]]
        return np.array(out), cols
    finally:
        ZoneSampler.FEW_ROWS = saved


@pytest.mark.parametrize("hold,evidence,temperature", [(24, 2.0, 0.5), (8, 0.0, 1.0), (24, 2.0, 0.1), (3, 1.0, 0.7)])
@pytest.mark.parametrize("offsets", [OFFSETS_8, [(0, -1), (0, -2), (-1, -1), (1, -1)]])
def test_row_by_row_draws_are_the_whole_pass_draws(hold, evidence, temperature, offsets):
    rows = list(range(2, 15))
    whole, cols = _run(-1, hold, evidence, temperature, rows, offsets)  # -1: never row by row
    by_row, _ = _run(ZoneSampler.FEW_ROWS, hold, evidence, temperature, rows, offsets)
    assert np.array_equal(whole, by_row)
    assert (whole[:240, rows] != cols[:, rows]).mean() > 0.2  # and the zone was blurred


def test_row_by_row_allocates_no_buffers():
    s = ZoneSampler(_table(), R, seed=2, evidence=2.0, hold=24, past="input")
    p = np.zeros(R)
    p[2:15] = 1.0
    s.set_rows(p)
    cols = np.random.default_rng(3).integers(0, K, (80, R))
    out = np.empty(R, np.int64)
    for c in cols[:30]:  # past the opening column: the held path from here on
        s.step_rows(c, 0.5, out=out)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for c in cols[30:]:
            s.step_rows(c, 0.5, out=out)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 4096, peak  # numpy's small scalar temporaries only
