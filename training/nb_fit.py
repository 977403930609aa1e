"""Fit and evaluate the Naive Bayes model of codemaps (the table the blur samples from).

Model (the same as scikit-learn's ``CategoricalNB``): a cell with code ``c`` at row ``r``
has features ``r`` and the codes ``n_o`` of its neighbours at fixed offsets ``o``::

    log p(c | r, n) = log P(c) + log P(r | c) + sum_o log P(n_o | c) + const

with Laplace-smoothed estimates (``alpha``)::

    P(c)          = (N_c + a0) / (N + a0 K)                    a0 = prior_alpha (default alpha)
    P(r | c)      = (N_rc + alpha) / (N_c + alpha rows)
    P(n_o = v | c) = (N_ovc + alpha) / (N_oc + alpha K)

``N_oc`` counts the cells with code ``c`` whose neighbour at ``o`` exists (border
``"drop"``, the default: a missing neighbour drops its factor when fitting, exactly as the
sampler drops it when sampling, and every cell counts for ``P(c)`` and ``P(r | c)``). With
``border="interior"`` only cells whose every neighbour exists are counted, for every
factor: that is literally ``CategoricalNB`` fitted on the interior cells' feature matrix
``[row, n_1, ..., n_O]`` (``tests/test_nb_sklearn_reference.py`` checks both).

Offsets (``d_row``, ``d_col``; ``d_col < 0`` is the past): ``"8"`` = the 8-neighbourhood
(the default), ``"causal"`` = ``(-1,-1) (0,-1) (1,-1) (-1,0) (1,0)``: the whole previous
column plus the same column's rows +-1, which is exactly what the streaming
``ZoneSampler`` can use (the previous column from its output history, the same column's
rows from the current column in its odd/even sweep), or a list ``"-1:0,0:-1"``.

The table is stored as log-probabilities (float32 by default), format in
docs/ARCHITECTURE.md; ``save_nb_table`` writes an uncompressed npz.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from vqblur.engine.blur import T_KNOB_MAX, parse_offsets, select_offsets

__all__ = [
    "fit_nb",
    "save_nb_table",
    "log_posterior",
    "evaluate_nb",
    "format_eval_table",
    "print_eval_table",
]


def _check_codemaps(codemaps: Sequence[np.ndarray], K: int) -> int:
    rows = None
    for i, m in enumerate(codemaps):
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"codemap {i} has shape {m.shape}, expected [rows, T]")
        if rows is None:
            rows = m.shape[0]
        elif m.shape[0] != rows:
            raise ValueError(f"codemap {i} has {m.shape[0]} rows, the first had {rows}")
        if m.size and (m.min() < 0 or m.max() >= K):
            raise ValueError(f"codemap {i} has codes outside 0..{K - 1}")
    if rows is None:
        raise ValueError("no codemaps")
    return rows


def _valid_slices(R: int, T: int, dr: int, dc: int):
    """(centre slice, neighbour slice) of the cells whose neighbour at (dr, dc) is on the grid."""
    r0, r1 = max(0, -dr), R - max(0, dr)
    c0, c1 = max(0, -dc), T - max(0, dc)
    return (slice(r0, r1), slice(c0, c1)), (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))


def fit_nb(
    codemaps: Sequence[np.ndarray],
    K: int,
    offsets="8",
    alpha: float = 1.0,
    *,
    prior_alpha: float | None = None,
    border: str = "drop",
    dtype=np.float32,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Count and smooth; returns the table dict (keys as in ARCHITECTURE.md, plus
    ``prior_alpha`` and ``border``). ``codemaps``: int arrays ``[rows, T]`` with codes
    ``0..K-1`` (T may differ between maps)."""
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    if border not in ("drop", "interior"):
        raise ValueError(f"border must be 'drop' or 'interior', not {border!r}")
    offs = parse_offsets(offsets)
    O = len(offs)
    R = _check_codemaps(codemaps, K)
    a0 = float(alpha if prior_alpha is None else prior_alpha)
    n_c = np.zeros(K, dtype=np.int64)
    n_rc = np.zeros((R, K), dtype=np.int64)
    n_ovc = np.zeros((O, K * K), dtype=np.int64)
    n_oc = np.zeros((O, K), dtype=np.int64)
    rows_idx = np.arange(R)[:, None]
    it: Iterable = codemaps
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(codemaps, desc="count", unit="map")
    mr = max(abs(dr) for dr, _ in offs)
    mc = max(abs(dc) for _, dc in offs)
    for m in it:
        m = np.asarray(m, dtype=np.int64)
        T = m.shape[1]
        if border == "interior":
            if R <= 2 * mr or T <= 2 * mc:
                continue
            inner = (slice(mr, R - mr), slice(mc, T - mc))
            c = m[inner]
            rr = np.broadcast_to(rows_idx[mr : R - mr], c.shape)
            n_c += np.bincount(c.ravel(), minlength=K)
            n_rc += np.bincount((rr * K + c).ravel(), minlength=R * K).reshape(R, K)
            for o, (dr, dc) in enumerate(offs):
                v = m[mr + dr : R - mr + dr, mc + dc : T - mc + dc]
                n_ovc[o] += np.bincount((v * K + c).ravel(), minlength=K * K)
                n_oc[o] += np.bincount(c.ravel(), minlength=K)
            continue
        if T == 0:
            continue
        n_c += np.bincount(m.ravel(), minlength=K)
        n_rc += np.bincount((rows_idx * K + m).ravel(), minlength=R * K).reshape(R, K)
        for o, (dr, dc) in enumerate(offs):
            cs, ns = _valid_slices(R, T, dr, dc)
            c = m[cs]
            if c.size == 0:
                continue
            v = m[ns]
            n_ovc[o] += np.bincount((v * K + c).ravel(), minlength=K * K)
            n_oc[o] += np.bincount(c.ravel(), minlength=K)
    N = int(n_c.sum())
    if N == 0:
        raise ValueError("no cells to count (empty codemaps?)")
    with np.errstate(divide="ignore"):  # prior_alpha = 0 and an unseen code -> -inf
        log_prior = np.log(n_c + a0) - math.log(N + a0 * K)
    log_row = np.log(n_rc + alpha) - np.log(n_c + alpha * R)[None, :]
    log_neigh = np.log(n_ovc.reshape(O, K, K) + alpha) - np.log(n_oc + alpha * K)[:, None, :]
    return {
        "log_prior": log_prior.astype(dtype),
        "log_row": log_row.astype(dtype),
        "log_neigh": log_neigh.astype(dtype),
        "offsets": np.asarray(offs, dtype=np.int64).reshape(O, 2),
        "alpha": np.float64(alpha),
        "prior_alpha": np.float64(a0),
        "n_cells": np.int64(N),
        "codebook_size": np.int64(K),
        "rows": np.int64(R),
        "border": np.str_(border),
    }


def save_nb_table(path, table: Mapping[str, np.ndarray]) -> Path:
    """Write the table as an uncompressed npz (atomically: temp file, then rename);
    returns the path. Log-probabilities keep their dtype; metadata becomes 0-d arrays."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    arrays = {}
    for k, v in dict(table).items():
        a = np.asarray(v)
        if a.dtype == object:
            raise ValueError(f"table key {k!r} is not a plain array")
        arrays[k] = a
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- evaluation


def _as_dict(table) -> Mapping[str, np.ndarray]:
    """Table dict from a dict, an ``NBTable`` or a path to an npz."""
    if isinstance(table, Mapping):
        return table
    if isinstance(table, (str, os.PathLike)):
        from vqblur.engine.blur import load_nb_table

        table = load_nb_table(table)
    return table.to_dict()


def _stacked(table, sel: list[int], dtype=np.float64):
    """[O'*(K+1) + rows, K] float32: per selected offset its K rows plus a zero row
    ("missing"), then log_prior + log_row[r]; and the offsets."""
    lp = np.asarray(table["log_prior"], np.float64)
    lr = np.asarray(table["log_row"], np.float64)
    ln = np.asarray(table["log_neigh"])
    offs_all = np.asarray(table["offsets"]).reshape(-1, 2)
    K = lp.shape[0]
    R = lr.shape[0]
    B = K + 1
    big = np.zeros((len(sel) * B + R, K), dtype=dtype)
    for j, i in enumerate(sel):
        big[j * B : j * B + K] = ln[i]
    big[len(sel) * B :] = lp[None, :] + lr
    return big, [tuple(int(x) for x in offs_all[i]) for i in sel]


def _cell_indices(m: np.ndarray, offs, K: int) -> np.ndarray:
    """[R*T, O'+1] row indices into the stacked table for every cell of codemap m."""
    R, T = m.shape
    O = len(offs)
    B = K + 1
    pr = max([abs(dr) for dr, _ in offs] + [0])
    pc = max([abs(dc) for _, dc in offs] + [0])
    gp = np.full((R + 2 * pr, T + 2 * pc), K, dtype=np.int64)
    gp[pr : pr + R, pc : pc + T] = m
    idx = np.empty((R, T, O + 1), dtype=np.int64)
    for j, (dr, dc) in enumerate(offs):
        idx[:, :, j] = gp[pr + dr : pr + dr + R, pc + dc : pc + dc + T] + j * B
    idx[:, :, O] = (O * B + np.arange(R))[:, None]
    return idx.reshape(R * T, O + 1)


def _logsumexp(L: np.ndarray) -> np.ndarray:
    mx = L.max(axis=1, keepdims=True)
    return (mx + np.log(np.exp(L - mx).sum(axis=1, keepdims=True)))[:, 0]


def log_posterior(table, codemap: np.ndarray, offsets="full") -> np.ndarray:
    """Normalised ``log p(c | row, neighbours)`` for every cell: ``[R, T, K]`` float64.
    Neighbours off the grid drop their factor. ``offsets``: ``"full"``, ``"causal"``, or a
    list of the table's offsets."""
    table = _as_dict(table)
    m = np.asarray(codemap, dtype=np.int64)
    K = int(np.asarray(table["log_prior"]).shape[0])
    sel = select_offsets(table["offsets"], offsets)
    big, offs = _stacked(table, sel)
    L = big[_cell_indices(m, offs, K)].sum(axis=1)
    L -= _logsumexp(L)[:, None]
    return L.reshape(m.shape[0], m.shape[1], K)


#: Temperatures at which the NLL is also measured (logits / T): the best one says how
#: over- or under-confident the Naive Bayes posterior is (knob t = sqrt(T / T_KNOB_MAX)).
CALIBRATION_TEMPERATURES = tuple(float(x) for x in np.round(2.0 ** np.arange(-1.0, 3.01, 0.5), 4))


def _score(L: np.ndarray, c: np.ndarray, acc: dict) -> None:
    """Accumulate NLL (nats), top-1 and top-5 hits of the true codes c under logits L, and
    the NLL at each calibration temperature."""
    ar = np.arange(len(c))
    N = L - _logsumexp(L)[:, None]
    lt = N[ar, c]
    rank = (N > lt[:, None]).sum(axis=1)
    acc["nll"] += float(-lt.sum())
    acc["top1"] += int((rank < 1).sum())
    acc["top5"] += int((rank < 5).sum())
    cal = acc.setdefault("cal", np.zeros(len(CALIBRATION_TEMPERATURES)))
    for i, T in enumerate(CALIBRATION_TEMPERATURES):
        Z = N / T
        cal[i] += float(-(Z[ar, c] - _logsumexp(Z)).sum())


class _Lookup:
    """Scores of a model whose posterior depends on the row only (unigram, row-only): every
    per-cell quantity is a table lookup."""

    def __init__(self, logits: np.ndarray):  # [R', K]
        L = logits - _logsumexp(logits)[:, None]
        self.logp = L
        self.rank = (L[:, None, :] > L[:, :, None]).sum(axis=2)  # rank[r, c]
        self.cal = np.stack([L / T - _logsumexp(L / T)[:, None] for T in CALIBRATION_TEMPERATURES])

    def score(self, r: np.ndarray, c: np.ndarray, acc: dict) -> None:
        acc["nll"] += float(-self.logp[r, c].sum())
        rank = self.rank[r, c]
        acc["top1"] += int((rank < 1).sum())
        acc["top5"] += int((rank < 5).sum())
        cal = acc.setdefault("cal", np.zeros(len(CALIBRATION_TEMPERATURES)))
        cal -= self.cal[:, r, c].sum(axis=1)


def _finish(acc: dict, n: int) -> dict:
    n = max(n, 1)
    nats = acc["nll"] / n
    cal = acc.get("cal", np.full(len(CALIBRATION_TEMPERATURES), np.nan)) / n
    best = int(np.nanargmin(cal)) if np.isfinite(cal).any() else 0
    T = CALIBRATION_TEMPERATURES[best]
    return {
        "nll_nats": nats,
        "nll_bits": nats / math.log(2),
        "perplexity": math.exp(nats),
        "top1": acc["top1"] / n,
        "top5": acc["top5"] / n,
        "best_temperature": T,
        "best_temperature_knob": math.sqrt(T / T_KNOB_MAX),
        "nll_at_best_temperature_nats": float(cal[best]),
        "nll_at_best_temperature_bits": float(cal[best]) / math.log(2),
    }


def evaluate_nb(
    table,
    codemaps: Sequence[np.ndarray],
    offsets=None,
    *,
    chunk: int = 4096,
    max_cells: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Score the table on held-out codemaps: per-cell negative log-likelihood of the centre
    code (nats and bits), perplexity, top-1 / top-5 accuracy.

    ``offsets``: a mapping ``name -> offsets spec`` (default ``{"full": "full",
    "causal": "causal"}``), or one spec (then its name is the spec string, or ``"custom"``).
    Always includes the baselines ``"unigram"`` (P(c) only) and ``"row_only"``
    (P(c) P(r | c)). ``max_cells``: score a random subset of that many cells (seeded).
    Returns ``{"n_cells": N, "models": {name: {nll_nats, nll_bits, perplexity, top1, top5,
    best_temperature, best_temperature_knob, nll_at_best_temperature_nats/_bits,
    offsets}}}``, models in the order unigram, row_only, then the neighbourhoods.

    Naive Bayes counts correlated neighbours as independent evidence, so with many
    neighbours its posterior is over-confident: the top-1 accuracy rises while the NLL can
    get worse than a baseline's. ``best_temperature`` (the T among
    ``CALIBRATION_TEMPERATURES`` that minimises the NLL of ``softmax(log p / T)`` on these
    cells) measures that; its knob value ``sqrt(T / T_KNOB_MAX)`` is where the blur samples codes as
    often as the data has them.
    """
    table = _as_dict(table)
    if offsets is None:
        offsets = {"full": "full", "causal": "causal"}
    elif not isinstance(offsets, Mapping):
        offsets = {offsets if isinstance(offsets, str) else "custom": offsets}
    K = int(np.asarray(table["log_prior"]).shape[0])
    R = int(np.asarray(table["log_row"]).shape[0])
    _check_codemaps(codemaps, K)
    models = {"unigram": [], "row_only": []}
    stacks = {}
    for name, spec in offsets.items():
        sel = select_offsets(table["offsets"], spec)
        stacks[name] = _stacked(table, sel, dtype=np.float32)  # summed in float32
        models[name] = stacks[name][1]
    lp = np.asarray(table["log_prior"], np.float64)
    unigram = _Lookup(lp[None, :])
    row_only = _Lookup(lp[None, :] + np.asarray(table["log_row"], np.float64))
    zeros = None
    acc = {k: {"nll": 0.0, "top1": 0, "top5": 0} for k in models}

    keep = None
    total = sum(int(np.asarray(m).size) for m in codemaps)
    if max_cells is not None and max_cells < total:
        rng = np.random.default_rng(seed)
        keep_flat = np.zeros(total, dtype=bool)
        keep_flat[rng.choice(total, size=max_cells, replace=False)] = True
        keep = keep_flat
    it: Iterable = enumerate(codemaps)
    if progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(list(it), desc="evaluate", unit="map")
    n = 0
    pos = 0
    for _, m in it:
        m = np.asarray(m, dtype=np.int64)
        size = m.size
        if size == 0:
            continue
        c_all = m.ravel()
        r_all = np.repeat(np.arange(R), m.shape[1])
        cells = np.arange(size) if keep is None else np.nonzero(keep[pos : pos + size])[0]
        pos += size
        if len(cells) == 0:
            continue
        n += len(cells)
        idx_by = {name: _cell_indices(m, offs, K) for name, (_, offs) in stacks.items()}
        for s in range(0, len(cells), chunk):
            cs = cells[s : s + chunk]
            c = c_all[cs]
            if zeros is None or len(zeros) != len(cs):
                zeros = np.zeros(len(cs), dtype=np.int64)
            unigram.score(zeros, c, acc["unigram"])
            row_only.score(r_all[cs], c, acc["row_only"])
            for name, (big, _) in stacks.items():
                L = big[idx_by[name][cs]].sum(axis=1, dtype=np.float32)
                _score(L.astype(np.float64), c, acc[name])
    out = {"n_cells": n, "models": {}}
    for name, offs in models.items():
        res = _finish(acc[name], n)
        res["offsets"] = [list(o) for o in offs]
        out["models"][name] = res
    return out


def format_eval_table(results: Mapping[str, dict] | dict, title: str | None = None) -> str:
    """A Markdown table. ``results``: one ``evaluate_nb`` result, or ``{split: result}``."""
    if "models" in results:
        results = {"": results}
    lines = []
    if title:
        lines.append(f"### {title}")
        lines.append("")
    lines.append(
        "| split | model | offsets | cells | NLL (nats) | NLL (bits) | perplexity | top-1 | top-5 "
        "| best T (knob t) | NLL at best T (bits) |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for split, res in results.items():
        for name, r in res["models"].items():
            offs = " ".join(f"{a}:{b}" for a, b in r["offsets"]) or "-"
            lines.append(
                f"| {split} | {name} | {offs} | {res['n_cells']} | {r['nll_nats']:.3f} | "
                f"{r['nll_bits']:.3f} | {r['perplexity']:.1f} | {r['top1']:.3f} | {r['top5']:.3f} | "
                f"{r['best_temperature']:.2f} ({r['best_temperature_knob']:.2f}) | "
                f"{r['nll_at_best_temperature_bits']:.3f} |"
            )
    return "\n".join(lines)


def print_eval_table(results, title: str | None = None) -> None:
    print(format_eval_table(results, title))


def write_eval_json(path, payload: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
