"""The Naive Bayes table: its format, validation and loading, and the neighbour offsets.

numpy only. Model (docs/ARCHITECTURE.md, "Naive Bayes table")::

    log p(c | r, n) = log P(c) + log P(r | c) + sum_o log P(n_o | c) + const

``log_prior[K]``, ``log_row[rows, K]``, ``log_neigh[O, K, K]`` (``log_neigh[o, v, c] = log P(the
neighbour at offset o has code v | c)``), ``offsets[O, 2]`` as (d_row, d_col), d_col < 0 the past.
Laplace-smoothed counts, the same model as scikit-learn's CategoricalNB (the tests' reference).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vqblur.common.errors import BundleError

#: The 8-neighbourhood, (d_row, d_col); d_col < 0 is the past.
OFFSETS_8: tuple[tuple[int, int], ...] = (
    (-1, -1), (0, -1), (1, -1),
    (-1, 0), (1, 0),
    (-1, 1), (0, 1), (1, 1),
)
#: What the streaming engine can use: the past column and the same column's rows +-1.
OFFSETS_CAUSAL: tuple[tuple[int, int], ...] = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0))


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
