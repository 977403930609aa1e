"""The offline blur of a whole code grid: Gibbs sweeps over the full neighbourhood.

numpy only. Cells are coloured by ``(row mod (max|d_row|+1), col mod (max|d_col|+1))``; no two
cells of one colour are neighbours, so each colour is resampled exactly in one vectorised pass.
A sweep visits the colours in order (0,0), (0,1), ..., (1,0), ... The time axis of a zone has
the row axis's soft profile with ``e = min(h_t / 2, 8 columns)`` (26.7 ms at 300 columns/s);
whether a cell is resampled is drawn once per call.
"""

from __future__ import annotations

import numpy as np

from vqblur.engine.blur.sampler import _U_MIN, zone_probabilities
from vqblur.engine.blur.table import _as_table, select_offsets
from vqblur.engine.knobs import knob_to_temperature



def blur_grid(
    codes,
    table,
    zone,
    temperature: float,
    sweeps: int = 4,
    seed: int = 0,
    offsets="full",
    chunk: int = 2048,
    selected_out: np.ndarray | None = None,
) -> np.ndarray:
    """Offline blur of a whole codemap ``codes[R, T]`` by Gibbs sweeps.

    ``zone``: an array ``[R, T]`` of resampling probabilities (e.g. from
    :func:`zone_probabilities`), or a tuple ``(time_span, centre, size)`` with
    ``time_span = (start_col, end_col)`` (or None) and knob values ``centre``, ``size``.
    Which cells are resampled is drawn once (cell resampled iff ``u < p``); the other cells
    never change. ``temperature`` is the knob value t (T = 4 t**2). ``offsets``: ``"full"``
    (every table offset) or any spec :func:`select_offsets` takes. Returns a new int64 grid;
    ``selected_out`` (bool ``[R, T]``), when given, receives which cells were resampled.
    """
    table = _as_table(table)
    grid = np.asarray(codes)
    if grid.ndim != 2:
        raise ValueError(f"codes must be [rows, T], got shape {grid.shape}")
    R, Tn = grid.shape
    K = table.codebook_size
    if R != table.rows:
        raise ValueError(f"codemap has {R} rows, the table {table.rows}")
    if isinstance(zone, tuple):
        span, centre, size = zone
        prob = zone_probabilities(R, Tn, span, centre, size)
    else:
        prob = np.asarray(zone, dtype=np.float64)
        if prob.shape != grid.shape:
            raise ValueError(f"zone mask shape {prob.shape} != codes shape {grid.shape}")
    rng = np.random.Generator(np.random.PCG64(seed))
    T = knob_to_temperature(temperature)
    selected = rng.random(grid.shape) < prob if T > 0 else prob >= 0.5
    if selected_out is not None:
        selected_out[...] = selected & (sweeps > 0)
    out = grid.astype(np.int64, copy=True)
    if not selected.any() or sweeps <= 0:
        return out
    sel = select_offsets(table.offsets, offsets)
    offs = [table.offset_list[i] for i in sel]
    O = len(offs)
    B = K + 1
    big = np.zeros((O * B + R, K), dtype=np.float32)
    for j, i in enumerate(sel):
        big[j * B : j * B + K] = table.log_neigh[i]
    big[O * B :] = np.asarray(table.log_prior, np.float64)[None, :] + table.log_row

    pr = max(abs(dr) for dr, _ in offs)
    pc = max(abs(dc) for _, dc in offs)
    W = Tn + 2 * pc
    gpad = np.full((R + 2 * pr, W), K, dtype=np.int64)
    gpad[pr : pr + R, pc : pc + Tn] = out
    flat = gpad.reshape(-1)
    delta = np.array([dr * W + dc for dr, dc in offs], dtype=np.int64)
    ooff = np.concatenate([np.arange(O, dtype=np.int64) * B, [O * B]])

    rr_all, cc_all = np.nonzero(selected)
    colours = []
    for a in range(pr + 1):
        for b in range(pc + 1):
            m = (rr_all % (pr + 1) == a) & (cc_all % (pc + 1) == b)
            if m.any():
                rr, cc = rr_all[m], cc_all[m]
                pos = (rr + pr) * W + (cc + pc)
                colours.append((rr, pos, pos[:, None] + delta[None, :]))
    for _ in range(int(sweeps)):
        for rr, pos, npos in colours:
            for s in range(0, len(pos), chunk):
                e = min(s + chunk, len(pos))
                n = e - s
                idx = np.empty((n, O + 1), dtype=np.int64)
                idx[:, :O] = flat[npos[s:e]]
                idx[:, O] = rr[s:e]
                idx += ooff
                L = big[idx].sum(axis=1)
                if T > 0:
                    u = np.maximum(rng.random(L.shape, dtype=np.float32), _U_MIN)
                    L -= T * np.log(-np.log(u))
                flat[pos[s:e]] = np.argmax(L, axis=1)
    return gpad[pr : pr + R, pc : pc + Tn].copy()
