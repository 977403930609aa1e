"""ZoneSampler.step works in preallocated buffers (it runs 300 times a second in the engine)."""

import tracemalloc

import numpy as np
import pytest

from vqblur.engine.blur import OFFSETS_8, NBTable, ZoneSampler

K, R = 256, 20


@pytest.mark.parametrize("noise", ["pool", "exact"])
def test_step_allocates_no_buffers(noise):
    rng = np.random.default_rng(0)
    table = NBTable(
        log_prior=np.full(K, -np.log(K), np.float32),
        log_row=np.full((R, K), -np.log(R), np.float32),
        log_neigh=np.log(rng.dirichlet(np.ones(K), size=(8, K))).transpose(0, 2, 1).astype(np.float32),
        offsets=np.array(OFFSETS_8),
    )
    s = ZoneSampler(table, R, noise=noise)
    cols = rng.integers(0, K, (50, R))
    out = np.empty(R, np.int64)
    for c in cols[:5]:
        s.step(c, 0.6, 0.4, 0.7, out=out)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for c in cols:
            s.step(c, 0.6, 0.4, 0.7, out=out)
        s.step(cols[0], 0.0, 0.4, 0.7, out=out)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # the zone alone is 13 rows x 256 codes x 6 factors x 4 bytes = 80 kB of data per step
    assert peak < 4096, peak  # numpy's own small temporaries (views, ufunc state), no buffers
