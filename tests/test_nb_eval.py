"""Naive Bayes fitting sanity and held-out evaluation against the baselines."""

import math

import numpy as np
import pytest

from vqblur.training.nb_fit import evaluate_nb, fit_nb, format_eval_table, log_posterior

K, R = 16, 12


def structured_codemaps(n, seed, T=40, noise=0.1):
    """Codes that depend on the row and drift slowly in time, with some random cells."""
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(n):
        walk = np.cumsum(rng.integers(-1, 2, T) * (rng.random(T) < 0.2))
        m = (np.arange(R)[:, None] // 3 + walk[None, :]) % K
        flip = rng.random(m.shape) < noise
        m[flip] = rng.integers(0, K, flip.sum())
        maps.append(m.astype(np.int64))
    return maps


def test_fitted_factors_are_distributions():
    maps = structured_codemaps(5, 0)
    t = fit_nb(maps, K, offsets="8", alpha=0.5)
    assert int(t["n_cells"]) == sum(m.size for m in maps)
    assert t["log_neigh"].shape == (8, K, K) and t["log_row"].shape == (R, K)
    assert t["offsets"].tolist() == [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]]
    np.testing.assert_allclose(np.exp(t["log_prior"].astype(float)).sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.exp(t["log_row"].astype(float)).sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.exp(t["log_neigh"].astype(float)).sum(axis=1), 1.0, atol=1e-5)
    causal = fit_nb(maps, K, offsets="causal")
    assert causal["offsets"].tolist() == [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0]]
    custom = fit_nb(maps, K, offsets="-1:0,0:-1")
    assert custom["offsets"].tolist() == [[-1, 0], [0, -1]]


def test_counts_by_hand():
    m = np.array([[0, 1, 1], [2, 0, 1]])
    t = fit_nb([m], 3, offsets=[(0, -1)], alpha=1.0, dtype=np.float64)
    # P(c): counts 2, 3, 1 of 6 cells, smoothed
    np.testing.assert_allclose(np.exp(t["log_prior"]), np.array([3, 4, 2]) / 9)
    # left neighbour of code 1: cells (0,1)<-0, (0,2)<-1, (1,2)<-0 -> v counts [2, 1, 0]
    np.testing.assert_allclose(np.exp(t["log_neigh"][0, :, 1]), np.array([3, 2, 1]) / 6)
    # code 0 appears at rows 0 and 1 -> P(row | 0) = (1+1)/(2+2) each
    np.testing.assert_allclose(np.exp(t["log_row"][:, 0]), [0.5, 0.5])


def test_evaluation_structure_and_baselines():
    train, held = structured_codemaps(20, 1), structured_codemaps(6, 2)
    t = fit_nb(train, K, offsets="8", alpha=0.5)
    res = evaluate_nb(t, held)
    assert res["n_cells"] == sum(m.size for m in held)
    assert list(res["models"]) == ["unigram", "row_only", "full", "causal"]
    for r in res["models"].values():
        assert r["nll_bits"] == pytest.approx(r["nll_nats"] / math.log(2))
        assert r["perplexity"] == pytest.approx(math.exp(r["nll_nats"]))
        assert 0 <= r["top1"] <= r["top5"] <= 1
    # the unigram baseline by hand
    c = np.concatenate([m.ravel() for m in held])
    lp = t["log_prior"].astype(np.float64)
    lp -= np.log(np.exp(lp).sum())
    assert res["models"]["unigram"]["nll_nats"] == pytest.approx(-lp[c].mean(), rel=1e-5)
    # more context, better predictions, on codemaps it never saw
    nll = {k: v["nll_nats"] for k, v in res["models"].items()}
    assert nll["causal"] < nll["row_only"] < nll["unigram"]
    top1 = {k: v["top1"] for k, v in res["models"].items()}
    assert top1["full"] > top1["row_only"] > top1["unigram"]
    assert top1["causal"] > top1["row_only"]
    # Naive Bayes double-counts correlated neighbours (over-confident): a temperature > 1
    # calibrates it, and then the full neighbourhood beats the baselines on NLL too
    full = res["models"]["full"]
    assert full["best_temperature"] > 1.0
    assert full["nll_at_best_temperature_nats"] <= full["nll_nats"]
    assert full["nll_at_best_temperature_nats"] < res["models"]["row_only"]["nll_at_best_temperature_nats"]
    from vqblur.engine.blur import T_KNOB_MAX

    assert full["best_temperature_knob"] == pytest.approx(math.sqrt(full["best_temperature"] / T_KNOB_MAX))
    assert res["models"]["causal"]["offsets"] == [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0]]
    # the per-cell NLL is the model's own posterior
    lpost = log_posterior(t, held[0], "full")
    direct = -np.take_along_axis(lpost, held[0][:, :, None], axis=2).mean()
    solo = evaluate_nb(t, held[:1], "full")["models"]["full"]["nll_nats"]
    assert solo == pytest.approx(direct, rel=1e-5)


def test_subsampled_evaluation_and_table():
    train, held = structured_codemaps(10, 3), structured_codemaps(4, 4)
    t = fit_nb(train, K, alpha=1.0)
    full = evaluate_nb(t, held)
    sub = evaluate_nb(t, held, max_cells=500, seed=1)
    assert sub["n_cells"] == 500
    assert sub["models"]["full"]["nll_nats"] == pytest.approx(full["models"]["full"]["nll_nats"], rel=0.2)
    text = format_eval_table({"valid": full, "test": sub})
    assert text.count("\n") == 2 + 2 * 4 - 1
    assert "| valid | full |" in text and "| test | unigram |" in text
