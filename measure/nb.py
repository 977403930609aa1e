"""Naive Bayes evaluation: held-out NLL and top-k of each cell's code given its neighbours
(the bundle's table, full neighbourhood, as the offline blur uses it) against the unigram
prior, on grids the bundle's encoder produced; and the NB fit's own metrics from a manifest."""

from __future__ import annotations

import numpy as np

from vqblur.engine.bundle import Bundle


#: the temperatures the tempered reading tries (the table's log-probabilities divided by T)
TEMPERATURES = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def nb_heldout(bundle: Bundle, grids: list[np.ndarray]) -> dict:
    """NLL / top-k of each cell's code given its neighbours (full table offsets) vs the prior.

    Also a tempered reading (``tempered``): a Naive Bayes sum of 8 neighbours counts shared
    evidence 8 times and is over-confident, so the NLL at ``P ∝ exp(L / T)`` for each of
    ``TEMPERATURES`` (``nll_nats``, all grids), and a calibrated figure that does not pick its
    own temperature: ``T*`` chosen on the even grids, the NLL read on the odd ones (with the
    unigram's NLL on the same cells)."""
    from vqblur.engine.blur import load_nb_table

    t = load_nb_table(bundle.nb_path)
    K, R = t.codebook_size, t.rows
    offs = t.offset_list
    pr = max([abs(a) for a, _ in offs] + [0])
    pcol = max([abs(b) for _, b in offs] + [0])
    prior = np.asarray(t.log_prior, np.float64)
    prior = prior - np.logaddexp.reduce(prior)
    neigh = [np.vstack([np.asarray(t.log_neigh[o], np.float32), np.zeros((1, K), np.float32)])
             for o in range(len(offs))]
    base = (np.asarray(t.log_prior, np.float64)[None, :] + np.asarray(t.log_row, np.float64)).astype(np.float32)
    nll = 0.0
    top1 = top5 = top1_u = top5_u = 0
    n = 0
    prior_rank = np.argsort(-prior)
    temps = np.asarray(TEMPERATURES, np.float64)
    nll_t = np.zeros((2, len(temps)))  # [even / odd grids, T]
    cells_half = np.zeros(2, np.int64)
    nll_u_half = np.zeros(2)
    for gi, g in enumerate(grids):
        if g.size == 0:
            continue
        Tn = g.shape[1]
        gp = np.full((R + 2 * pr, Tn + 2 * pcol), K, np.int64)
        gp[pr : pr + R, pcol : pcol + Tn] = g
        for c0 in range(0, Tn, 256):
            c1 = min(Tn, c0 + 256)
            L = np.repeat(base[:, None, :], c1 - c0, axis=1)  # [R, cols, K]
            for (dr, dc), tab in zip(offs, neigh):
                nb = gp[pr + dr : pr + dr + R, pcol + c0 + dc : pcol + c1 + dc]
                L += tab[nb]
            L = L.reshape(-1, K).astype(np.float64)
            truth = g[:, c0:c1].reshape(-1)
            idx = np.arange(len(truth))
            half = gi % 2
            for j, T in enumerate(temps):  # the tempered reading
                LT = L / T
                nll_t[half, j] -= float((LT[idx, truth] - np.logaddexp.reduce(LT, axis=1)).sum())
            cells_half[half] += len(truth)
            nll_u_half[half] += float(-prior[truth].sum())  # (their sum is the unigram's NLL)
            L -= np.logaddexp.reduce(L, axis=1, keepdims=True)
            nll += float(-L[idx, truth].sum())
            rank5 = np.argpartition(-L, min(5, K - 1), axis=1)[:, :5]
            top1 += int((np.argmax(L, axis=1) == truth).sum())
            top5 += int((rank5 == truth[:, None]).any(axis=1).sum())
            top1_u += int((truth == prior_rank[0]).sum())
            top5_u += int(np.isin(truth, prior_rank[:5]).sum())
            n += len(truth)
    if n == 0:
        return {"cells": 0}
    nll_u = float(nll_u_half.sum())
    tempered = {"T": temps.tolist(), "nll_nats": (nll_t.sum(axis=0) / n).tolist()}
    if cells_half.min() > 0:  # T* on the even grids, read on the odd ones
        best = int(np.argmin(nll_t[0] / cells_half[0]))
        tempered.update({"best_T": float(temps[best]), "calibrated_cells": int(cells_half[1]),
                         "calibrated_nll_nats": float(nll_t[1, best] / cells_half[1]),
                         "calibrated_unigram_nll_nats": float(nll_u_half[1] / cells_half[1])})
    return {
        "cells": n, "offsets": [list(o) for o in offs],
        "nll_nats": nll / n, "unigram_nll_nats": nll_u / n,
        "nll_gain_nats": (nll_u - nll) / n,
        "top1": top1 / n, "top5": top5 / n,
        "unigram_top1": top1_u / n, "unigram_top5": top5_u / n,
        "codes_in_use": int(len(np.unique(np.concatenate([g.reshape(-1) for g in grids])))),
        "tempered": tempered,
    }


def manifest_nb_metrics(manifest: dict) -> dict | None:
    """The NB fitting's own held-out evaluation, wherever the manifest records it:
    ``nb.evaluation`` (what `vqblur export` copies from the fit's eval JSON: ``{"n_cells",
    "models": {"unigram", "row_only", "full", "causal": {nll_nats, top1, top5, ...}}}``),
    ``nb.metrics``, ``training.metrics.nb``, or nll/top keys in ``training.metrics``."""
    nb = manifest.get("nb") or {}
    if isinstance(nb, dict):
        for key in ("evaluation", "metrics"):
            if isinstance(nb.get(key), dict) and nb[key]:
                return nb[key]
    tm = (manifest.get("training") or {}).get("metrics") or {}
    if isinstance(tm.get("nb"), dict):
        return tm["nb"]
    found = {k: v for k, v in tm.items() if "nll" in k.lower() or "top" in k.lower()}
    return found or None


def nb_fit_splits(fit) -> dict[str, dict]:
    """The fit's evaluations by split, ``{split: {"n_cells", "models": {name: {nll_nats, top1, ...}}}}``,
    from either an ``evaluate_nb`` result or the `vqblur fit-nb` summary (``{"evaluation": {"valid":
    ..., "test": ...}, ...}``)."""
    if not isinstance(fit, dict):
        return {}
    if isinstance(fit.get("models"), dict):
        return {"eval": fit}
    ev = fit.get("evaluation")
    if isinstance(ev, dict):
        if isinstance(ev.get("models"), dict):
            return {"eval": ev}
        return {k: v for k, v in ev.items() if isinstance(v, dict) and isinstance(v.get("models"), dict)}
    return {}
