"""Our Naive Bayes fit equals scikit-learn's CategoricalNB (the reference model)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.naive_bayes import CategoricalNB

from vqblur.training.nb_fit import fit_nb, log_posterior

K, R, ALPHA = 7, 6, 0.7
OFFS = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]


def _codemaps(seed=0):
    rng = np.random.default_rng(seed)
    maps = []
    for T in (9, 13, 5):
        # a little structure: codes drift with the row, plus noise
        m = (np.arange(R)[:, None] // 2 + rng.integers(0, 5, (R, T))) % K
        maps.append(m.astype(np.int64))
    return maps


def _features(m, offs, cells):
    """[n, 1 + O]: row, then the neighbour code at each offset, for the given cells."""
    return np.array([[r] + [m[r + dr, t + dc] for dr, dc in offs] for r, t in cells])


def _interior(m, margin=1):
    R_, T = m.shape
    return [(r, t) for r in range(margin, R_ - margin) for t in range(margin, T - margin)]


def test_interior_fit_equals_categorical_nb():
    maps = _codemaps()
    table = fit_nb(maps, K, offsets="8", alpha=ALPHA, prior_alpha=0.0, border="interior",
                   dtype=np.float64)
    X = np.concatenate([_features(m, OFFS, _interior(m)) for m in maps])
    y = np.concatenate([[m[r, t] for r, t in _interior(m)] for m in maps])
    assert set(y.tolist()) == set(range(K))  # every class seen, so sklearn has all K
    ref = CategoricalNB(alpha=ALPHA, min_categories=[R] + [K] * len(OFFS)).fit(X, y)
    assert [n for n in ref.n_categories_] == [R] + [K] * len(OFFS)
    # the fitted factors themselves
    np.testing.assert_allclose(table["log_prior"], ref.class_log_prior_, atol=1e-10)
    np.testing.assert_allclose(table["log_row"], ref.feature_log_prob_[0].T, atol=1e-10)
    for o in range(len(OFFS)):
        np.testing.assert_allclose(table["log_neigh"][o], ref.feature_log_prob_[1 + o].T, atol=1e-10)
    # and the posteriors, on codemaps neither has seen
    for m in _codemaps(seed=1):
        cells = _interior(m)
        ours = log_posterior(table, m, "full")
        ours = np.array([ours[r, t] for r, t in cells])
        np.testing.assert_allclose(ours, ref.predict_log_proba(_features(m, OFFS, cells)), atol=1e-5)


def test_default_fit_is_per_feature_categorical_nb():
    """border="drop": each factor is CategoricalNB's, counted on the cells where that
    feature exists; P(c) is Laplace-smoothed (given to sklearn as class_prior)."""
    maps = _codemaps()
    table = fit_nb(maps, K, offsets="8", alpha=ALPHA, dtype=np.float64)
    assert int(table["n_cells"]) == sum(m.size for m in maps)
    counts = np.bincount(np.concatenate([m.ravel() for m in maps]), minlength=K)
    prior = (counts + ALPHA) / (counts.sum() + ALPHA * K)
    np.testing.assert_allclose(table["log_prior"], np.log(prior), atol=1e-12)

    # the row factor over every cell
    rows = np.concatenate([np.repeat(np.arange(R), m.shape[1]) for m in maps])[:, None]
    y_all = np.concatenate([m.ravel() for m in maps])
    row_nb = CategoricalNB(alpha=ALPHA, min_categories=[R], class_prior=prior).fit(rows, y_all)
    np.testing.assert_allclose(table["log_row"], row_nb.feature_log_prob_[0].T, atol=1e-10)

    # each neighbour factor over the cells that have that neighbour
    per_offset = []
    for o, (dr, dc) in enumerate(OFFS):
        cells = [[(r, t) for r in range(R) for t in range(m.shape[1])
                  if 0 <= r + dr < R and 0 <= t + dc < m.shape[1]] for m in maps]
        X = np.concatenate([[[m[r + dr, t + dc]] for r, t in cs] for m, cs in zip(maps, cells)])
        y = np.concatenate([[m[r, t] for r, t in cs] for m, cs in zip(maps, cells)])
        nb = CategoricalNB(alpha=ALPHA, min_categories=[K], class_prior=prior).fit(X, y)
        np.testing.assert_allclose(table["log_neigh"][o], nb.feature_log_prob_[0].T, atol=1e-10)
        per_offset.append(nb)

    # posterior of every cell, border cells included (missing factors dropped), against
    # the sum of the per-feature sklearn joint log-likelihoods
    for m in _codemaps(seed=2):
        ours = log_posterior(table, m, "full")
        for r in range(R):
            for t in range(m.shape[1]):
                jll = row_nb.predict_joint_log_proba([[r]])[0]
                for (dr, dc), nb in zip(OFFS, per_offset):
                    if 0 <= r + dr < R and 0 <= t + dc < m.shape[1]:
                        jll = jll + nb.predict_joint_log_proba([[m[r + dr, t + dc]]])[0] - np.log(prior)
                ref = jll - np.logaddexp.reduce(jll)
                np.testing.assert_allclose(ours[r, t], ref, atol=1e-5)


def test_float32_table_matches_to_1e5():
    maps = _codemaps()
    t32 = fit_nb(maps, K, alpha=ALPHA)
    t64 = fit_nb(maps, K, alpha=ALPHA, dtype=np.float64)
    assert t32["log_neigh"].dtype == np.float32
    m = _codemaps(seed=3)[0]
    np.testing.assert_allclose(log_posterior(t32, m), log_posterior(t64, m), atol=1e-5)
