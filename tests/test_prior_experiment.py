"""scripts/prior_experiment.py: the log-linear prior it fits is an NB-format table the engine
samples as it stands (its logits are the table's, cell for cell), and training moves it from
the tempered NB start towards the data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqblur.engine.blur import OFFSETS_CAUSAL  # noqa: E402
from vqblur.training.nb_fit import evaluate_nb, fit_nb, log_posterior  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("prior_experiment", ROOT / "scripts" / "prior_experiment.py")
pe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pe)
OFFS = [tuple(o) for o in OFFSETS_CAUSAL]


def _maps(rng, n: int, R: int = 6, T: int = 40, K: int = 8) -> list[np.ndarray]:
    """Codemaps with structure along time and frequency: each cell mostly copies its left
    neighbour or the cell above it, else a random code."""
    out = []
    for _ in range(n):
        m = rng.integers(0, K, (R, T))
        for t in range(1, T):
            for r in range(R):
                u = rng.random()
                if u < 0.5:
                    m[r, t] = m[r, t - 1]
                elif u < 0.75 and r > 0:
                    m[r, t] = (m[r - 1, t] + 1) % K
        out.append(m)
    return out


def test_neighbour_features_are_the_causal_neighbours_or_missing():
    m = np.arange(12).reshape(3, 4) % 7
    c, r, n = pe.neighbour_features([m], 7, OFFS)
    assert c.tolist() == m.ravel().tolist() and r.tolist() == np.repeat(np.arange(3), 4).tolist()
    for i, (rr, tt) in enumerate(np.ndindex(3, 4)):
        for o, (dr, dc) in enumerate(OFFS):
            inside = 0 <= rr + dr < 3 and 0 <= tt + dc < 4
            assert n[i, o] == (m[rr + dr, tt + dc] if inside else 7)


def test_the_loglinear_model_is_an_nb_table_cell_for_cell():
    rng = np.random.default_rng(0)
    K, R = 8, 6
    maps = _maps(rng, 3, R=R, K=K)
    nb = fit_nb(maps, K, offsets="8")
    W0, b0 = pe.causal_start(nb, OFFS, temperature=2.0)
    ll, _ = pe.make_models(K, R, len(OFFS), W0, b0, hidden=16, dim=4)
    with torch.no_grad():  # not the start: any weights
        ll.W.normal_()
        ll.b.normal_()
    table = pe.as_nb_table(ll, nb, OFFS)
    c, r, n = (torch.from_numpy(a) for a in pe.neighbour_features([maps[0]], K, OFFS))
    want = torch.log_softmax(ll(r, n), 1).detach().numpy().reshape(R, -1, K)
    got = log_posterior(table, maps[0], offsets="causal")
    np.testing.assert_allclose(got, want, atol=1e-4)
    # the start is the NB table's causal posterior at temperature 2
    ll0, _ = pe.make_models(K, R, len(OFFS), W0, b0, hidden=16, dim=4)
    nb_logits = log_posterior(nb, maps[0], offsets="causal") * 0.5
    nb_logits -= np.log(np.exp(nb_logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(torch.log_softmax(ll0(r, n), 1).detach().numpy().reshape(R, -1, K),
                               nb_logits, atol=1e-4)


def test_training_lowers_the_held_out_nll_below_the_nb_tables():
    rng = np.random.default_rng(1)
    K, R = 8, 6
    train_maps, test_maps = _maps(rng, 40, R=R, K=K), _maps(rng, 10, R=R, K=K)
    nb = fit_nb(train_maps, K, offsets="8")
    ev = evaluate_nb(nb, test_maps, offsets={"causal": "causal"})["models"]["causal"]
    W0, b0 = pe.causal_start(nb, OFFS, ev["best_temperature"])
    ll, mlp = pe.make_models(K, R, len(OFFS), W0, b0, hidden=32, dim=8)
    data = tuple(torch.from_numpy(a) for a in pe.neighbour_features(train_maps, K, OFFS))
    torch.manual_seed(0)
    pe.train(ll, data, steps=300, lr=1e-2, batch=1024, seed=0, label="loglinear")
    got = evaluate_nb(pe.as_nb_table(ll, nb, OFFS), test_maps, offsets={"causal": "causal"})
    nll = got["models"]["causal"]["nll_nats"]
    assert nll < ev["nll_at_best_temperature_nats"] - 0.1, (nll, ev)  # 1.27 vs 1.41 here
    pe.train(mlp, data, steps=300, lr=3e-3, batch=1024, seed=0, label="mlp")
    test = tuple(torch.from_numpy(a) for a in pe.neighbour_features(test_maps, K, OFFS))
    assert pe.nll_of(mlp, test)[0] < ev["nll_at_best_temperature_nats"], ev
