"""The streaming zone sampler: one code column at a time, from the Naive Bayes table.

numpy only. Sampling is Gumbel-max: ``argmax(logp / T + g)`` with i.i.d. ``g = -log(-log u)``,
``u ~ U(0, 1)`` (float32, clamped at 2**-30) from a seeded ``np.random.Generator`` (PCG64); by
default ``g`` comes from a refreshed pool (see :class:`ZoneSampler`, ``noise``). T = 0 (or any
T < ``T_MIN``) takes the most probable code.

Which rows a step resamples
---------------------------
Either the knob values (``step(codes, zone_size, centre, T)``: a cell at distance ``d`` rows
from the centre row ``centre * (rows - 1)`` is resampled with probability
:func:`zone_profile` ``(d, h = zone_size * rows, e = h / 2)``, drawn once per cell and column;
at T = 0 it is resampled iff that probability is >= 1/2, so T = 0 does not depend on the seed),
or a row set given by the caller (:meth:`ZoneSampler.set_rows` then ``step_rows``): the blur v2
places its zone on a perceptual frequency axis and hands the sampler the rows under it.

:func:`zone_profile`: 1 in the core (``d <= h - e``), a Gaussian fall-off
``exp(-0.5 * ((d - (h - e)) / (e / 2))**2)`` in the edge band (``h - e < d < h``), 0 from
``d >= h`` on (cells *outside* the zone never change).

Sweep order
-----------
Neighbours in past columns (``d_col < 0``) come from the sampler's own history of *output*
columns; before the first columns after a ``reset`` they are missing and drop their factor.
Neighbours in the same column (``d_col == 0``, ``d_row != 0``) use their *current* value, in a
two-pass odd/even sweep: first every even row of the zone at once (its same-column neighbours
hold the encoder's codes, or their final values outside the zone), then every odd row, which
sees the new even rows. For the default offsets (``d_row = +-1``) this is an exact Gibbs sweep
of the column; same-column offsets with even ``d_row`` (custom tables only) see pre-sweep
values (a Jacobi-style approximation). Future columns are never used.

Blur v2 options (both off by default: the plain tempered NB posterior, which the tests check
against scikit-learn):

* ``evidence`` (nats): the input cell's own code gets this much extra log-probability, so the
  resampled code stays near the input's unless its neighbours say otherwise; the temperature
  then sets how far codes wander from it;
* ``past="input"``: the past-column neighbours are the *input's* codes, not the sampler's own
  output, so an open zone never drifts away from what is played into it (with ``"output"``,
  the default, the blur propagates its own draws in time);
* ``hold`` (columns): a resampled row keeps its last output code and is redrawn only every
  ``hold`` columns (rows staggered, a fixed schedule: no randomness, T = 0 stays seed-free),
  so codes persist instead of flickering every 3.3 ms column.
"""

from __future__ import annotations

import math

import numpy as np

from vqblur.common.errors import BundleError
from vqblur.engine.blur.table import NBTable, _as_table, select_offsets
from vqblur.engine.knobs import T_KNOB_MAX, T_MIN

TIME_EDGE_COLUMNS = 8.0


def zone_profile(d, half: float, edge: float) -> np.ndarray:
    """Resampling probability at distance ``d`` from the zone centre (see module doc)."""
    d = np.abs(np.asarray(d, dtype=np.float64))
    out = np.zeros_like(d)
    if half <= 0:
        return out
    edge = min(max(edge, 1e-9), half)
    core = half - edge
    inside = d < half
    out[inside] = 1.0
    band = inside & (d > core)
    out[band] = np.exp(-0.5 * ((d[band] - core) / (edge / 2.0)) ** 2)
    return out


def zone_probabilities(
    rows: int, cols: int, time_span: tuple[float, float] | None, centre: float, size: float
) -> np.ndarray:
    """Probability [rows, cols] that each cell is resampled, for knob values ``centre`` and
    ``size`` (0..1) and a time span ``(start_col, end_col)`` in columns (end exclusive;
    None = every column)."""
    h = float(size) * rows
    c = float(centre) * (rows - 1)
    pr = zone_profile(np.arange(rows) - c, h, h / 2.0)
    if time_span is None:
        pt = np.ones(cols)
    else:
        a, b = float(time_span[0]), float(time_span[1])
        a, b = max(a, 0.0), min(b, float(cols))
        if b <= a:
            pt = np.zeros(cols)
        else:
            ht = (b - a) / 2.0
            mt = (a + b - 1.0) / 2.0
            pt = zone_profile(np.arange(cols) - mt, ht, min(ht / 2.0, TIME_EDGE_COLUMNS))
            # a span shorter than a column still means "these columns"
            pt[(np.arange(cols) < a) | (np.arange(cols) >= b)] = 0.0
    return pr[:, None] * pt[None, :]



_U_MIN = np.float32(2.0**-30)


def _gumbel(rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
    """Fill float32 ``out`` with standard Gumbel noise ``-log(-log u)``, u ~ U(0, 1)."""
    rng.random(dtype=np.float32, out=out)
    np.maximum(out, _U_MIN, out=out)  # u = 0 would give log(0)
    np.log(out, out=out)
    np.negative(out, out=out)
    np.log(out, out=out)
    np.negative(out, out=out)
    return out


class ZoneSampler:
    """Streaming zone resampler: one code column per :meth:`step`.

    ``table``: an :class:`NBTable`, the dict ``fit_nb`` returns, or a path.
    ``rows``: checked against the table (``BundleError`` on mismatch).
    ``offsets``: ``"causal"`` (the table's offsets with ``d_col < 0`` or same-column
    ``d_row != 0``) or an explicit list (each in the table, none in the future).
    ``seed``: seeds the ``np.random.Generator`` (PCG64); ``reset()`` restarts it.
    ``noise``: where the Gumbel noise comes from.

    * ``"pool"`` (default, fast): a pool of ``POOL_SIZE`` (+ one column's worth) i.i.d.
      Gumbel values; each of a step's two passes takes its ``n * K`` values as one
      contiguous window of the pool at a uniformly random offset, and every
      ``POOL_REFRESH_EVERY`` steps ``POOL_REFRESH`` pool values are replaced by fresh noise
      (the whole pool every ~0.5 s at 300 columns/s). A window of i.i.d. values is i.i.d.,
      so every draw has exactly the tempered posterior as its distribution; draws close in
      time may share (shifted) noise values: a weak dependence between them, no bias.
    * ``"exact"``: fresh noise for every cell and code (about 2 ns per value: ~10 us per
      step for a full 20-row zone of K = 256).

    All buffers are preallocated: ``step`` allocates nothing but numpy's scalar
    temporaries (and the result array when neither ``out`` is given nor the zone is empty).
    Codes must lie in ``0..K-1`` (not checked per step).
    """

    POOL_SIZE = 1 << 16
    POOL_REFRESH = 2048  # values refreshed ...
    POOL_REFRESH_EVERY = 4  # ... every this many steps (with T > 0)
    #: with ``hold``, a pass whose rows to draw (accepted, not kept) are at most this many draws
    #: them one by one instead of the whole zone (the same draws; see :meth:`_draw_pass`)
    FEW_ROWS = 3

    def __init__(
        self, table, rows: int | None = None, seed: int = 0, offsets="causal", noise: str = "pool",
        evidence: float = 0.0, hold: int = 1, past: str = "output",
    ):
        if noise not in ("pool", "exact"):
            raise ValueError(f"noise must be 'pool' or 'exact', not {noise!r}")
        if not (evidence >= 0.0 and math.isfinite(evidence)):
            raise ValueError(f"evidence must be a finite number of nats >= 0, not {evidence!r}")
        if int(hold) < 1:
            raise ValueError(f"hold must be >= 1 column, not {hold!r}")
        if past not in ("output", "input"):
            raise ValueError(f"past must be 'output' or 'input', not {past!r}")
        self.noise = noise
        self.past_output = past == "output"
        self.evidence = float(evidence)
        self.hold = int(hold)
        table = _as_table(table)
        if rows is not None and rows != table.rows:
            raise BundleError(
                f"{table.source}: bad Naive Bayes table: it has {table.rows} rows, "
                f"the sampler wants {rows}"
            )
        self.table = table
        self.rows = R = table.rows
        self.codebook_size = K = table.codebook_size
        self.seed = seed
        sel = select_offsets(table.offsets, offsets)
        offs = [table.offset_list[i] for i in sel]
        fut = [o for o in offs if o[1] > 0]
        if fut:
            raise ValueError(f"streaming sampler cannot use future offsets {fut}")
        self.offsets = offs
        O = len(offs)
        self.history = H = max([-dc for _, dc in offs] + [0])
        self._same_column = any(dc == 0 for _, dc in offs)

        B = K + 1
        self._big = self.prepare_table(table)

        # Context vector: [current column (R) | output col -1 (R) | ... | row ids (R) | K].
        n_ctx = R * (1 + H) + R + 1
        self._ctx = np.full(n_ctx, K, dtype=np.intp)
        rowid_at = R * (1 + H)
        self._ctx[rowid_at : rowid_at + R] = np.arange(R)
        sentinel_at = n_ctx - 1
        # gather index of cell r, factor j = ooff[r, j] + ctx[src[r, j]]
        src = np.full((R, O + 1), sentinel_at, dtype=np.intp)
        ooff = np.empty((R, O + 1), dtype=np.intp)
        for j, (dr, dc) in enumerate(offs):
            ooff[:, j] = j * B
            for r in range(R):
                if 0 <= r + dr < R:
                    src[r, j] = (-dc) * R + r + dr
        src[:, O] = rowid_at + np.arange(R)
        ooff[:, O] = O * B

        # Per-parity contiguous buffers (group 0: rows 0,2,4..; group 1: rows 1,3,..).
        # Without same-column offsets one group holds every row (a single pass).
        groups = [np.arange(0, R, 2), np.arange(1, R, 2)] if self._same_column else [np.arange(R)]
        self._groups = []
        for rows_g in groups:
            n = len(rows_g)
            self._groups.append(
                (
                    np.ascontiguousarray(src[rows_g]),
                    np.ascontiguousarray(ooff[rows_g]),
                    np.empty((n, O + 1), dtype=np.intp),  # idx
                    np.empty((n, O + 1, K), dtype=np.float32),  # gathered factors
                    np.empty((n, K), dtype=np.float32),  # logits
                    np.empty(n, dtype=np.intp),  # result
                    np.empty((n, K), dtype=np.float32),  # Gumbel noise (noise="exact")
                    np.arange(n, dtype=np.intp) * K,  # flat offset of each row's logits (evidence)
                    np.empty(n, dtype=np.intp),  # flat index of the input code's logit
                    np.empty(n, dtype=np.float32),  # its logit
                )
            )
        # hold: row r is redrawn in the columns where (count + stagger[r]) % hold == 0
        self._stagger = (np.arange(R, dtype=np.intp) * 5) % self.hold
        self._phase = np.zeros(R, dtype=np.intp)
        self._keep = np.zeros(R, dtype=bool)  # rows that keep their last output code this column
        self._was = np.zeros(R, dtype=bool)  # rows resampled in the previous column
        self._last = np.zeros(R, dtype=np.intp)  # the previous output column
        self._count = 0
        if noise == "pool":
            n_pool = self.POOL_SIZE + R * K
            n_pool += -n_pool % self.POOL_REFRESH
            self._pool = np.empty(n_pool, dtype=np.float32)
        self._pool_ptr = 0
        self._u = np.empty(R + 2, dtype=np.float64)
        self._accept = np.zeros(R, dtype=bool)
        #: after each step: which rows of the column were resampled (drawn from the table,
        #: whether or not the drawn code differs); codec v2 drops finer levels there
        self.resampled = np.zeros(R, dtype=bool)
        self._prob = np.zeros(R, dtype=np.float64)
        self._prob_key: tuple[float, float] | None = None  # the zone _set_zone cached
        self._rowpos = np.arange(R, dtype=np.float64)
        self.reset()

    def prepare_table(self, table) -> np.ndarray:
        """Another table with this sampler's rows, codebook and offsets, stacked the way ``step``
        reads it (block j of K + 1 rows = ``log_neigh`` of offset j plus a zero row for "missing",
        code K; then one row of ``log_prior + log_row[r]`` per row). Build it off the audio
        thread; :meth:`use_table` swaps it in between two steps (a palette switch)."""
        table = _as_table(table)
        R, K = self.rows, self.codebook_size
        if table.rows != R or table.codebook_size != K:
            raise BundleError(f"{table.source}: bad Naive Bayes table: {table.rows} rows x {table.codebook_size} "
                              f"codes, the sampler has {R} x {K}")
        offs = table.offset_list
        missing = [o for o in self.offsets if o not in offs]
        if missing:
            raise BundleError(f"{table.source}: bad Naive Bayes table: it lacks the offsets {missing}")
        B, O = K + 1, len(self.offsets)
        big = np.zeros((O * B + R, K), dtype=np.float32)
        for j, o in enumerate(self.offsets):
            big[j * B : j * B + K] = table.log_neigh[offs.index(o)]
        big[O * B :] = np.asarray(table.log_prior, np.float64)[None, :] + table.log_row
        return big

    def use_table(self, prepared: np.ndarray) -> None:
        """Swap in a table made by :meth:`prepare_table` (a reference swap: call between steps)."""
        if prepared.shape != self._big.shape:
            raise ValueError(f"prepared table has shape {prepared.shape}, the sampler's is {self._big.shape}")
        self._big = prepared

    def reset(self, seed: int | None = None) -> None:
        """Forget the history (past neighbours drop their factors again) and restart the
        random stream (from ``seed`` if given, else the constructor's)."""
        if seed is not None:
            self.seed = seed
        self._ctx[: self.rows * (1 + self.history)] = self.codebook_size
        self._was[:] = False
        self._count = 0
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        if self.noise == "pool":
            _gumbel(self._rng, self._pool)
            self._pool_ptr = 0
            self._pool_steps = 0

    def zone_rows(self, zone_size: float, centre: float) -> np.ndarray:
        """Resampling probability of each row for these knob values (a copy)."""
        h = float(zone_size) * self.rows
        c = float(centre) * (self.rows - 1)
        return zone_profile(self._rowpos - c, h, h / 2.0)

    def _set_zone(self, h: float, c: float) -> None:
        """Cache what a zone (half-height h rows, centre row c) needs per step."""
        self._set_prob(zone_profile(self._rowpos - c, h, h / 2.0))
        self._prob_key = (h, c)

    def set_rows(self, prob) -> None:
        """The rows :meth:`step_rows` resamples: a probability per row ([rows], 0..1; 1 = every
        column, 0 = never). Cached until the next call (call it when the zone moves)."""
        p = np.asarray(prob, dtype=np.float64).reshape(-1)
        if p.shape[0] != self.rows:
            raise ValueError(f"set_rows wants {self.rows} probabilities, got {p.shape[0]}")
        self._set_prob(np.clip(np.nan_to_num(p), 0.0, 1.0))
        self._prob_key = ("rows",)

    def _set_prob(self, prob: np.ndarray) -> None:
        """Cache what a row set needs per step: its rows lo..hi-1 (the span of prob > 0), their
        resampling probabilities, and per pass the buffer views of its rows."""
        R = self.rows
        nz = np.flatnonzero(prob > 0.0)
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
        self._prob[:] = prob
        self._lo, self._hi = lo, hi
        self._prob_zone = self._prob[lo:hi]
        self._acc_zone = self._accept[lo:hi]
        self._u_zone = self._u[lo : hi + 2]
        self._u_rows = self._u_zone[: hi - lo]
        cur = self._ctx[:R]
        two = len(self._groups) == 2
        passes = []
        for p, (src, ooff, idx, G, L, res, N, ev_off, ev_idx, ev_val) in enumerate(self._groups):
            if two:  # rows lo..hi-1 of parity p are a..b-1 in the group's arrays
                a = (lo - p + 1) // 2
                b = (hi - p + 1) // 2
                rsl = slice(2 * a + p, 2 * b + p, 2)
            else:
                a, b = lo, hi
                rsl = slice(lo, hi)
            if b <= a:
                continue
            passes.append((src[a:b], ooff[a:b], idx[a:b], G[a:b], L[a:b], res[a:b], N[a:b],
                           cur[rsl], self._accept[rsl], hi - lo + p,
                           ev_off[: b - a], ev_idx[a:b], ev_val[a:b], self._keep[rsl], self._last[rsl],
                           np.zeros(b - a, dtype=bool)))
        self._passes = tuple(passes)

    def _push(self, col: np.ndarray) -> None:
        R, H, ctx = self.rows, self.history, self._ctx
        if H > 1:
            ctx[2 * R : (H + 1) * R] = ctx[R : H * R]
        if H > 0:
            ctx[R : 2 * R] = col

    def step(self, codes, zone_size: float, centre: float, temperature: float, out=None):
        """Resample one column ``codes`` (``rows`` int codes, any shape of that size).

        Knob values 0..1 (see the module doc; temperature T = 4 t**2). Returns the new column,
        written to ``out`` when given (may be ``codes`` itself), else a new array; with
        ``zone_size`` 0 and no ``out``, ``codes`` itself is returned (unchanged).
        """
        R = self.rows
        h = float(zone_size) * R
        if not h > 0.0:  # 0, negative or NaN: transparent
            return self._pass_through(codes, out)
        if h > 2.0 * R:  # inf included: the whole column
            h = 2.0 * R
        c = float(centre) * (R - 1)
        if not -R <= c <= 2.0 * R:  # NaN or far off: clamp (NaN -> the middle)
            c = 0.5 * (R - 1) if c != c else min(max(c, -R), 2.0 * R)
        if (h, c) != self._prob_key:
            self._set_zone(h, c)
        return self._draw(codes, temperature, out)

    def step_rows(self, codes, temperature: float, out=None):
        """Resample one column in the rows of the last :meth:`set_rows` (see :meth:`step`)."""
        if self._prob_key != ("rows",):
            raise RuntimeError("step_rows before set_rows")
        if self._hi <= self._lo:
            return self._pass_through(codes, out)
        return self._draw(codes, temperature, out)

    def _draw_pass(self, big, src, ooff, idx, G, L, res, cur_rows, ev_off, ev_idx, ev_val,
                   ev: float, inv_t: float, noise) -> None:
        """The draws of one pass's rows (all of them, or a one-row slice of each buffer):
        factors gathered and summed, the input's own code (still in ``cur_rows``) as evidence,
        then ``argmax(logp / T + noise)`` (``noise`` ``[n, K]`` Gumbel, or None: T = 0) into ``res``."""
        self._ctx.take(src, out=idx, mode="clip")  # methods: no numpy Python wrapper per call
        np.add(idx, ooff, out=idx)
        big.take(idx, axis=0, out=G, mode="clip")
        np.add.reduce(G, axis=1, out=L)
        if ev > 0.0:
            np.add(ev_off, cur_rows, out=ev_idx)
            L.take(ev_idx, out=ev_val)
            ev_val += ev
            L.put(ev_idx, ev_val)
        if noise is not None:  # Gumbel-max: g ~ Gumbel i.i.d. per cell and code
            np.multiply(L, inv_t, out=L)
            np.add(L, noise, out=L)
        L.argmax(axis=1, out=res)

    def _pass_through(self, codes, out):
        col = codes.reshape(-1)
        self.resampled[:] = False
        self._was[:] = False
        self._count += 1
        self._push(col)
        if out is None:
            return codes
        out.reshape(-1)[:] = col
        return out

    def _draw(self, codes, temperature: float, out):
        R = self.rows
        col = codes.reshape(-1)
        self.resampled[:] = False
        lo, hi, passes = self._lo, self._hi, self._passes
        ctx = self._ctx
        cur = ctx[:R]
        cur[:] = col
        holding = self.hold > 1
        if holding:  # rows resampled last column and not due for a redraw keep their code
            np.add(self._stagger, self._count, out=self._phase)
            np.remainder(self._phase, self.hold, out=self._phase)
            np.not_equal(self._phase, 0, out=self._keep)
            np.logical_and(self._keep, self._was, out=self._keep)
        self._count += 1
        if hi > lo:
            rng = self._rng
            T = T_KNOB_MAX * float(temperature) ** 2
            if not T >= T_MIN:  # tiny or NaN: the most probable code
                T = 0.0
            pool = self.noise == "pool"
            ev = self.evidence
            u = self._u_zone  # a uniform per zone row, and one per pass (pool)
            inv_t = 1.0 / T if T > 0.0 else 0.0
            if T > 0.0:
                rng.random(out=u)
                np.less(self._u_rows, self._prob_zone, out=self._acc_zone)
                if pool:
                    self._pool_steps += 1
                    if self._pool_steps == self.POOL_REFRESH_EVERY:
                        self._pool_steps = 0
                        k = self._pool_ptr
                        _gumbel(rng, self._pool[k : k + self.POOL_REFRESH])
                        self._pool_ptr = (k + self.POOL_REFRESH) % self._pool.shape[0]
            else:  # T = 0: the most probable choice for the edge too (p >= 1/2)
                np.greater_equal(self._prob_zone, 0.5, out=self._acc_zone)
            big = self._big
            for (src, ooff, idx, G, L, res, N, cur_rows, acc_rows, u_at,
                 ev_off, ev_idx, ev_val, keep_rows, last_rows, due) in passes:
                few = False
                if holding and pool and T > 0.0:  # a held zone redraws a row or two per column: those alone
                    np.greater(acc_rows, keep_rows, out=due)  # accepted and not kept
                    few = np.add.reduce(due) <= self.FEW_ROWS
                if few:  # each due row as a one-row pass, with its row of the pass's pool window
                    o, K = int(u[u_at] * (self.POOL_SIZE + 1)), L.shape[1]
                    while due.any():
                        i = int(due.argmax())
                        due[i] = False
                        r = slice(i, i + 1)
                        self._draw_pass(big, src[r], ooff[r], idx[r], G[r], L[r], res[r], cur_rows[r],
                                        ev_off[:1], ev_idx[r], ev_val[r], ev, inv_t,
                                        self._pool[o + i * K : o + (i + 1) * K].reshape(1, K))
                else:
                    noise = None
                    if T > 0.0:  # the pool: a contiguous window at a random offset
                        if pool:
                            o = int(u[u_at] * (self.POOL_SIZE + 1))
                            noise = self._pool[o : o + L.size].reshape(L.shape)
                        else:
                            noise = _gumbel(rng, N)
                    self._draw_pass(big, src, ooff, idx, G, L, res, cur_rows, ev_off, ev_idx, ev_val,
                                    ev, inv_t, noise)
                if holding:
                    np.copyto(res, last_rows, where=keep_rows)
                np.copyto(cur_rows, res, where=acc_rows)
            self.resampled[lo:hi] = self._acc_zone
        self._was[:] = self.resampled
        if holding:
            self._last[:] = cur
        if out is None:
            out = np.empty_like(codes)
        out.reshape(-1)[:] = cur
        self._push(cur if self.past_output else col)
        return out
