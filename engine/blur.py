"""The Naive Bayes "blur": resample a zone of the code grid from what its neighbours say.

numpy only (this module is part of the engine: it never imports torch).

Model (docs/ARCHITECTURE.md, "Naive Bayes table")::

    log p(c | r, n) = log P(c) + log P(r | c) + sum_o log P(n_o | c) + const

A neighbour that does not exist (off the grid, in the future, or not yet seen after a
``reset``) drops its factor. The temperature divides the log-probabilities; T = 0 takes
the most probable code (so does any T < ``T_MIN`` = 1e-6). Sampling is Gumbel-max:
``argmax(logp / T + g)`` with i.i.d. ``g = -log(-log u)``, ``u ~ U(0, 1)`` (float32,
clamped at 2**-30) from a seeded ``np.random.Generator`` (PCG64); the streaming sampler
takes ``g`` from a refreshed pool by default (see :class:`ZoneSampler`, ``noise``) and
works in float32.

Knob mappings (all knobs are 0..1, as in ARCHITECTURE.md):

* zone size ``s``   -> half-height ``h = s * rows`` rows; 0 = nothing resampled;
* centre ``m``      -> centre row ``m * (rows - 1)`` (0 = lowest band);
* temperature ``t`` -> ``T = 4 * t**2`` (``T_KNOB_MAX``; calibrated NB likelihood near T = 2..3).

The zone and its soft edge
--------------------------
A cell at distance ``d`` (in rows) from the centre row is resampled with probability
:func:`zone_profile` ``(d, h, e)``: 1 in the core (``d <= h - e``), a Gaussian fall-off
``exp(-0.5 * ((d - (h - e)) / (e / 2))**2)`` in the edge band (``h - e < d < h``), and 0
from ``d >= h`` on (those cells are *outside* the zone and never change). In rows the edge
band is half the half-height (``e = h / 2``). Offline, the time axis has the same profile
with ``e = min(h_t / 2, 8 columns)`` (8 columns = 26.7 ms at 300 columns/s). Whether an
edge cell is resampled is drawn once per cell (once per column when streaming, once per
``blur_grid`` call offline); at temperature 0 it is not drawn but decided the most
probable way (resampled iff its probability is >= 1/2), so T = 0 does not depend on the
seed at all.

Streaming sweep order (``ZoneSampler``)
---------------------------------------
One code column per call. Neighbours in past columns (``d_col < 0``) come from the
sampler's own history of *output* columns (so the blur propagates in time); before the
first columns after a ``reset`` they are missing and drop their factor. Neighbours in the
same column (``d_col == 0``, ``d_row != 0``) use their *current* value, in a two-pass
odd/even sweep: first every even row of the zone is resampled at once (its same-column
neighbours hold the encoder's codes, or their own already-final values outside the zone),
then every odd row, which sees the new even rows. For the default same-column offsets
(``d_row = +-1``) this is an exact Gibbs sweep of the column in the order
"even rows, then odd rows"; for same-column offsets with even ``d_row`` (e.g. +-2, only
in custom tables) a cell sees its same-parity neighbours' pre-sweep values (a Jacobi-style
approximation). Future columns (``d_col > 0``) are never used.

Offline (``blur_grid``)
-----------------------
Gibbs sweeps over the full neighbourhood (all of the table's offsets by default). Cells
are coloured by ``(row mod (max|d_row|+1), col mod (max|d_col|+1))``; no two cells of one
colour are neighbours, so each colour is resampled exactly in one vectorised pass. A sweep
visits the colours in order (0,0), (0,1), ..., (1,0), ...
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from vqblur.common.errors import BundleError

__all__ = [
    "NBTable",
    "load_nb_table",
    "parse_offsets",
    "select_offsets",
    "zone_profile",
    "zone_probabilities",
    "ZoneSampler",
    "blur_grid",
    "knob_to_temperature",
]

#: The 8-neighbourhood, (d_row, d_col); d_col < 0 is the past.
OFFSETS_8: tuple[tuple[int, int], ...] = (
    (-1, -1), (0, -1), (1, -1),
    (-1, 0), (1, 0),
    (-1, 1), (0, 1), (1, 1),
)
#: What the streaming engine can use: the past column and the same column's rows +-1.
OFFSETS_CAUSAL: tuple[tuple[int, int], ...] = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0))

TIME_EDGE_COLUMNS = 8.0


#: Below this, T counts as 0 (argmax): 1/T would overflow float32 logits.
T_MIN = 1e-6


#: T at the top of the temperature knob. Naive Bayes counts correlated neighbours as
#: independent evidence, so it is over-confident: held-out likelihood is best near T = 2
#: (causal) to 3 (full neighbourhood); the knob reaches past that, into the wild.
T_KNOB_MAX = 4.0


def knob_to_temperature(t: float) -> float:
    """Temperature knob 0..1 -> T = T_KNOB_MAX * t**2 (ARCHITECTURE.md); T < T_MIN (or NaN) -> 0."""
    T = T_KNOB_MAX * float(t) ** 2
    return T if T >= T_MIN else 0.0


# --------------------------------------------------------------------------- offsets


def parse_offsets(spec) -> list[tuple[int, int]]:
    """``"8"`` / ``"full"``, ``"causal"``, ``"-1:0,0:-1"`` (d_row:d_col pairs), or a sequence
    of pairs -> list of (d_row, d_col). (0, 0) is refused."""
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s in ("8", "full", "8-neighbourhood", "eight"):
            out = list(OFFSETS_8)
        elif s == "causal":
            out = list(OFFSETS_CAUSAL)
        else:
            out = []
            for part in s.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    a, b = part.split(":")
                    out.append((int(a), int(b)))
                except ValueError:
                    raise ValueError(
                        f"bad offset {part!r} in {spec!r}: expected d_row:d_col, e.g. '-1:0,0:-1'"
                    ) from None
    else:
        out = [(int(a), int(b)) for a, b in np.asarray(spec).reshape(-1, 2).tolist()]
    if not out:
        raise ValueError(f"no offsets in {spec!r}")
    if (0, 0) in out:
        raise ValueError("offset (0, 0) is the cell itself, not a neighbour")
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate offsets in {spec!r}")
    return out


def select_offsets(table_offsets: np.ndarray, which) -> list[int]:
    """Indices into the table's offsets for ``which``: ``"full"``/``"8"``/``"all"`` = every
    table offset; ``"causal"`` = the table offsets a streaming sampler can use
    (``d_col < 0``, or ``d_col == 0`` with ``d_row != 0``); or an explicit offset list,
    each of which must be in the table."""
    offs = [tuple(int(v) for v in o) for o in np.asarray(table_offsets).reshape(-1, 2)]
    if isinstance(which, str) and which.strip().lower() in ("full", "all", "8"):
        if which.strip().lower() == "8":
            missing = [o for o in OFFSETS_8 if o not in offs]
            if missing:
                raise ValueError(f"table lacks offsets {missing} of the 8-neighbourhood")
        return list(range(len(offs)))
    if isinstance(which, str) and which.strip().lower() == "causal":
        return [i for i, (dr, dc) in enumerate(offs) if dc < 0 or (dc == 0 and dr != 0)]
    wanted = parse_offsets(which)
    idx = []
    for o in wanted:
        if o not in offs:
            raise ValueError(f"offset {o} is not in the table (table has {offs})")
        idx.append(offs.index(o))
    return idx


# --------------------------------------------------------------------------- table


@dataclass
class NBTable:
    """A Naive Bayes table (ARCHITECTURE.md): log-probabilities, float32 or float64.

    ``log_prior[K]``, ``log_row[rows, K]``, ``log_neigh[O, K, K]`` with
    ``log_neigh[o, v, c] = log P(neighbour at offset o has code v | c)``, ``offsets[O, 2]``
    (d_row, d_col).
    """

    log_prior: np.ndarray
    log_row: np.ndarray
    log_neigh: np.ndarray
    offsets: np.ndarray
    alpha: float = 1.0
    n_cells: int = 0
    source: str = "<memory>"

    @property
    def codebook_size(self) -> int:
        return int(self.log_prior.shape[0])

    @property
    def rows(self) -> int:
        return int(self.log_row.shape[0])

    @property
    def offset_list(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in np.asarray(self.offsets).tolist()]

    @classmethod
    def from_dict(cls, d, source: str = "<memory>") -> "NBTable":
        """From the dict ``training.nb_fit.fit_nb`` returns (or an open npz); validated."""
        t = cls(
            log_prior=np.asarray(d["log_prior"]),
            log_row=np.asarray(d["log_row"]),
            log_neigh=np.asarray(d["log_neigh"]),
            offsets=np.asarray(d["offsets"]).astype(np.int64),
            alpha=float(np.asarray(d["alpha"])) if "alpha" in d else 1.0,
            n_cells=int(np.asarray(d["n_cells"])) if "n_cells" in d else 0,
            source=source,
        )
        t.validate(
            rows=int(np.asarray(d["rows"])) if "rows" in d else None,
            codebook_size=int(np.asarray(d["codebook_size"])) if "codebook_size" in d else None,
        )
        return t

    def to_dict(self) -> dict[str, np.ndarray]:
        return {
            "log_prior": self.log_prior,
            "log_row": self.log_row,
            "log_neigh": self.log_neigh,
            "offsets": self.offsets,
            "alpha": np.float64(self.alpha),
            "n_cells": np.int64(self.n_cells),
            "codebook_size": np.int64(self.codebook_size),
            "rows": np.int64(self.rows),
        }

    def validate(self, rows: int | None = None, codebook_size: int | None = None) -> None:
        """Raise ``BundleError`` naming ``self.source`` if shapes or values do not fit."""
        src = self.source

        def bad(msg: str) -> BundleError:
            return BundleError(f"{src}: bad Naive Bayes table: {msg}")

        for name in ("log_prior", "log_row", "log_neigh"):
            a = getattr(self, name)
            if not np.issubdtype(a.dtype, np.floating):
                raise bad(f"{name} has dtype {a.dtype}, expected float")
        if self.log_prior.ndim != 1 or self.log_prior.shape[0] < 1:
            raise bad(f"log_prior has shape {self.log_prior.shape}, expected [K]")
        K = self.log_prior.shape[0]
        if self.log_row.ndim != 2 or self.log_row.shape[1] != K:
            raise bad(f"log_row has shape {self.log_row.shape}, expected [rows, {K}]")
        if self.offsets.ndim != 2 or self.offsets.shape[1] != 2:
            raise bad(f"offsets has shape {self.offsets.shape}, expected [O, 2]")
        O = self.offsets.shape[0]
        if self.log_neigh.shape != (O, K, K):
            raise bad(f"log_neigh has shape {self.log_neigh.shape}, expected [{O}, {K}, {K}]")
        if rows is not None and self.log_row.shape[0] != rows:
            raise bad(f"table has {self.log_row.shape[0]} rows, expected {rows}")
        if codebook_size is not None and K != codebook_size:
            raise bad(f"table has codebook size {K}, expected {codebook_size}")
        offs = self.offset_list
        if (0, 0) in offs or len(set(offs)) != len(offs):
            raise bad(f"offsets {offs} contain (0, 0) or duplicates")
        if np.isnan(self.log_prior).any() or np.isnan(self.log_row).any():
            raise bad("NaN in log_prior/log_row")
        if np.isnan(self.log_neigh).any():
            raise bad("NaN in log_neigh")


def load_nb_table(path, rows: int | None = None, codebook_size: int | None = None) -> NBTable:
    """Load ``nb_table.npz`` (uncompressed npz: about 1 ms for the 2 MB float32 default).

    The arrays are read into memory once (an npz member cannot be memory-mapped); ``rows`` /
    ``codebook_size``, when given, are checked against the table. Any problem raises
    ``BundleError`` naming the file.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("log_prior", "log_row", "log_neigh", "offsets") if k not in z.files]
            if missing:
                raise BundleError(f"{path}: bad Naive Bayes table: missing keys {missing}")
            d = {k: z[k] for k in z.files}
    except BundleError:
        raise
    except FileNotFoundError:
        raise BundleError(f"{path}: Naive Bayes table not found") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled data), OSError ...
        raise BundleError(f"{path}: cannot read Naive Bayes table: {exc}") from None
    t = NBTable.from_dict(d, source=path)
    t.validate(rows=rows, codebook_size=codebook_size)
    return t


def _as_table(table) -> NBTable:
    if isinstance(table, NBTable):
        return table
    if isinstance(table, (str, os.PathLike)):
        return load_nb_table(table)
    return NBTable.from_dict(table)


# --------------------------------------------------------------------------- zone


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


# --------------------------------------------------------------------------- streaming

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

    def __init__(
        self, table, rows: int | None = None, seed: int = 0, offsets="causal", noise: str = "pool"
    ):
        if noise not in ("pool", "exact"):
            raise ValueError(f"noise must be 'pool' or 'exact', not {noise!r}")
        self.noise = noise
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

        # Stacked table: block j (K+1 rows) = log_neigh[sel[j]] plus a zero row for
        # "missing" (code K); then R rows of log_prior + log_row[r].
        B = K + 1
        big = np.zeros((O * B + R, K), dtype=np.float32)
        for j, i in enumerate(sel):
            big[j * B : j * B + K] = table.log_neigh[i]
        big[O * B :] = np.asarray(table.log_prior, np.float64)[None, :] + table.log_row
        self._big = big

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
                )
            )
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

    def reset(self, seed: int | None = None) -> None:
        """Forget the history (past neighbours drop their factors again) and restart the
        random stream (from ``seed`` if given, else the constructor's)."""
        if seed is not None:
            self.seed = seed
        self._ctx[: self.rows * (1 + self.history)] = self.codebook_size
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
        """Cache what a zone (half-height h rows, centre row c) needs per step: its rows lo..hi-1,
        their resampling probabilities, and per pass the buffer views of its rows."""
        R = self.rows
        lo = max(0, math.floor(c - h) + 1)  # rows with |r - c| < h
        hi = min(R, math.ceil(c + h))
        self._prob[:] = zone_profile(self._rowpos - c, h, h / 2.0)
        self._prob_key = (h, c)
        self._lo, self._hi = lo, hi
        self._prob_zone = self._prob[lo:hi]
        self._acc_zone = self._accept[lo:hi]
        self._u_zone = self._u[lo : hi + 2]
        self._u_rows = self._u_zone[: hi - lo]
        cur = self._ctx[:R]
        two = len(self._groups) == 2
        passes = []
        for p, (src, ooff, idx, G, L, res, N) in enumerate(self._groups):
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
                           cur[rsl], self._accept[rsl], hi - lo + p))
        self._passes = tuple(passes)

    def _push(self, col: np.ndarray) -> None:
        R, H, ctx = self.rows, self.history, self._ctx
        if H > 1:
            ctx[2 * R : (H + 1) * R] = ctx[R : H * R]
        if H > 0:
            ctx[R : 2 * R] = col

    def step(self, codes, zone_size: float, centre: float, temperature: float, out=None):
        """Resample one column ``codes`` (``rows`` int codes, any shape of that size).

        Knob values 0..1 (mapped as in the module doc). Returns the new column, written to
        ``out`` when given (may be ``codes`` itself), else a new array; with ``zone_size``
        0 and no ``out``, ``codes`` itself is returned (unchanged).
        """
        R = self.rows
        col = codes.reshape(-1)
        h = float(zone_size) * R
        self.resampled[:] = False
        if not h > 0.0:  # 0, negative or NaN: transparent
            self._push(col)
            if out is None:
                return codes
            out.reshape(-1)[:] = col
            return out
        if h > 2.0 * R:  # inf included: the whole column
            h = 2.0 * R
        c = float(centre) * (R - 1)
        if not -R <= c <= 2.0 * R:  # NaN or far off: clamp (NaN -> the middle)
            c = 0.5 * (R - 1) if c != c else min(max(c, -R), 2.0 * R)
        key = (h, c)
        if key != self._prob_key:
            self._set_zone(h, c)
        lo, hi, passes = self._lo, self._hi, self._passes
        ctx = self._ctx
        cur = ctx[:R]
        cur[:] = col
        if hi > lo:
            rng = self._rng
            T = T_KNOB_MAX * float(temperature) ** 2
            if not T >= T_MIN:  # tiny or NaN: the most probable code
                T = 0.0
            pool = self.noise == "pool"
            u = self._u_zone  # a uniform per zone row, and one per pass (pool)
            if T > 0.0:
                inv_t = 1.0 / T
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
            for src, ooff, idx, G, L, res, N, cur_rows, acc_rows, u_at in passes:
                ctx.take(src, out=idx, mode="clip")  # methods: no numpy Python wrapper per call
                np.add(idx, ooff, out=idx)
                big.take(idx, axis=0, out=G, mode="clip")
                np.add.reduce(G, axis=1, out=L)
                if T > 0.0:
                    # Gumbel-max: argmax(logp / T + g), g ~ Gumbel i.i.d. per cell and code
                    np.multiply(L, inv_t, out=L)
                    if pool:  # a contiguous window of the pool at a random offset
                        o = int(u[u_at] * (self.POOL_SIZE + 1))
                        np.add(L, self._pool[o : o + L.size].reshape(L.shape), out=L)
                    else:
                        np.add(L, _gumbel(rng, N), out=L)
                L.argmax(axis=1, out=res)
                np.copyto(cur_rows, res, where=acc_rows)
            self.resampled[lo:hi] = self._acc_zone
        if out is None:
            out = np.empty_like(codes)
        out.reshape(-1)[:] = cur
        self._push(cur)
        return out


# --------------------------------------------------------------------------- offline


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
