"""The blur samples from the tempered Naive Bayes posterior, in the documented sweep order."""

import numpy as np
import pytest

from vqblur.engine.blur import OFFSETS_8, NBTable, ZoneSampler, blur_grid
from vqblur.training.nb_fit import log_posterior

R = 10


def _table(K, seed=0):
    rng = np.random.default_rng(seed)
    return NBTable(
        log_prior=np.log(rng.dirichlet(np.full(K, 2.0))),
        log_row=np.log(rng.dirichlet(np.ones(R), size=K).T),
        log_neigh=np.log(rng.dirichlet(np.full(K, 0.7), size=(8, K))).transpose(0, 2, 1),
        offsets=np.array(OFFSETS_8),
    )


def _tempered(logp, t):
    from vqblur.engine.blur import T_KNOB_MAX

    z = logp / (T_KNOB_MAX * t**2)
    p = np.exp(z - z.max())
    return p / p.sum()


def _tv(samples, p):
    q = np.bincount(samples, minlength=len(p)) / len(samples)
    return 0.5 * np.abs(q - p).sum()


@pytest.mark.parametrize("noise", ["pool", "exact"])
def test_streaming_single_cell_follows_causal_posterior(noise):
    K, n, t = 8, 4000, 0.7
    table = _table(K)
    rng = np.random.default_rng(1)
    prev, col = rng.integers(0, K, R), rng.integers(0, K, R)
    s = ZoneSampler(table, R, noise=noise)
    draws = []
    for i in range(n):  # consecutive draws of one sampler (no reset between them)
        s.step(prev, 0.0, 0.5, t)  # zone 0: passes through, becomes the history
        draws.append(s.step(col, 0.05, 4 / (R - 1), t)[4])  # one-row zone: row 4
    # past column (d_col = -1, three rows) + same column rows 3 and 5
    logp = log_posterior(table.to_dict(), np.stack([prev, col], axis=1), "causal")[4, 1]
    assert _tv(np.array(draws), _tempered(logp, t)) < 0.04


@pytest.mark.parametrize("noise", ["pool", "exact"])
def test_streaming_odd_rows_see_the_new_even_rows(noise):
    """Zone rows 4 and 5, same-column offsets only: row 4 is drawn given the input rows 3 and
    5, then row 5 given the new row 4 and the input row 6 (exact Gibbs order "even rows,
    then odd rows")."""
    K, n, t = 4, 6000, 0.8
    table = _table(K, seed=2)
    col = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    s = ZoneSampler(table, R, offsets=[(-1, 0), (1, 0)], noise=noise)
    assert s.history == 0
    joint = np.zeros((K, K))
    for i in range(n):
        out = s.step(col, 0.1, 4.5 / (R - 1), t)  # h = 1 row around 4.5: rows 4, 5
        assert (out[[0, 1, 2, 3, 6, 7, 8, 9]] == col[[0, 1, 2, 3, 6, 7, 8, 9]]).all()
        joint[out[4], out[5]] += 1
    joint /= n
    p4 = _tempered(log_posterior(table.to_dict(), col[:, None], [(-1, 0), (1, 0)])[4, 0], t)
    expect = np.zeros((K, K))
    for a in range(K):
        c2 = col.copy()
        c2[4] = a
        expect[a] = p4[a] * _tempered(log_posterior(table.to_dict(), c2[:, None], [(-1, 0), (1, 0)])[5, 0], t)
    assert 0.5 * np.abs(joint - expect).sum() < 0.04


def test_offline_single_cell_follows_full_posterior():
    K, n, t = 8, 3000, 0.6
    table = _table(K, seed=3)
    grid = np.random.default_rng(4).integers(0, K, (R, 5))
    prob = np.zeros(grid.shape)
    prob[6, 2] = 1.0
    draws = np.array([blur_grid(grid, table, prob, t, sweeps=1, seed=i)[6, 2] for i in range(n)])
    logp = log_posterior(table.to_dict(), grid, "full")[6, 2]
    assert _tv(draws, _tempered(logp, t)) < 0.04
