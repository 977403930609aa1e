"""The bench's tempered Naive Bayes reading (measure/nb.py): a sum over 8 neighbours counts
shared evidence 8 times, so at T 1 the table is over-confident and can read worse than the
unigram prior although it knows much more. The tempered NLL at T 1 is the plain NLL; an
over-confident table reads best above T 1, and the calibrated figure (T* picked on the even
clips, read on the odd ones) is below the plain one; a uniform table reads log K at every T."""

from __future__ import annotations

import types

import numpy as np
import pytest

import vqblur.engine.blur as blur_pkg
from vqblur.engine.blur.table import NBTable, OFFSETS_8
from vqblur.measure.nb import TEMPERATURES, nb_heldout

K, ROWS = 4, 3


def _table(same: float) -> NBTable:
    """Every neighbour has the cell's code with probability ``same`` (the rest spread evenly)."""
    p = np.full((K, K), (1.0 - same) / (K - 1))
    np.fill_diagonal(p, same)
    neigh = np.repeat(np.log(p)[None], len(OFFSETS_8), axis=0)  # [O, v, c]
    return NBTable(log_prior=np.full(K, -np.log(K)), log_row=np.full((ROWS, K), -np.log(ROWS)),
                   log_neigh=neigh, offsets=np.asarray(OFFSETS_8))


def _grids(n: int, seed: int = 0) -> list[np.ndarray]:
    """Patches of one code (4 columns long, the whole height) with 30 % of the cells redrawn."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = np.repeat(rng.integers(0, K, 40), 4)[None, :].repeat(ROWS, axis=0)
        noise = rng.random(g.shape) < 0.3
        g[noise] = rng.integers(0, K, int(noise.sum()))
        out.append(g.astype(np.int64))
    return out


def _read(monkeypatch, table: NBTable) -> dict:
    monkeypatch.setattr(blur_pkg, "load_nb_table", lambda path: table)
    return nb_heldout(types.SimpleNamespace(nb_path="<memory>"), _grids(6))


def test_an_over_confident_table_reads_best_above_t1(monkeypatch):
    h = _read(monkeypatch, _table(0.9))  # the data's own rate is about 0.78: 0.9 x 8 is too sure
    t = h["tempered"]
    assert t["T"] == list(TEMPERATURES)
    assert t["nll_nats"][t["T"].index(1.0)] == pytest.approx(h["nll_nats"], rel=1e-9)
    assert t["best_T"] > 1.0
    assert t["calibrated_nll_nats"] < h["nll_nats"] - 0.05
    assert t["calibrated_nll_nats"] < t["calibrated_unigram_nll_nats"]
    assert 0 < t["calibrated_cells"] < h["cells"]


def test_a_uniform_table_reads_log_k_at_every_temperature(monkeypatch):
    h = _read(monkeypatch, _table(1.0 / K))
    assert np.allclose(h["tempered"]["nll_nats"], np.log(K), atol=1e-9)
    assert h["tempered"]["calibrated_nll_nats"] == pytest.approx(np.log(K), abs=1e-9)
