"""The blur of one channel's code column on codec v2's two codemaps (the ``scale`` knob).

A column's flat code vector (``OnnxCodec``'s layout, ``[n_codes]``) is micro level 0
(``rows``), the finer micro levels 1..L-1 (``rows`` each), then the macro map
(``rows_macro``). :class:`CodeBlur` resamples a zone of either map with its own Naive Bayes
:class:`~vqblur.engine.blur.ZoneSampler`:

* ``scale < 0.5``: micro level 0 (fine grain); in every resampled row, levels 1..L-1 are set
  to K ("dropped": they decode as zero), so a blurred zone is coarser than its surroundings;
* ``scale >= 0.5``: the macro map (broad envelope; zone size and centre read on its rows);
  in the micro rows under a resampled macro cell, levels 1..L-1 are dropped (level 0 stays).

Both samplers see every column (the inactive one at zone 0: it only records the column), so
their histories stay current when ``scale`` moves.

Which rows: given a :class:`~vqblur.engine.blur.zone.PerceptualZone` (``zone=``, what the engine
passes), the rows under the zone on the perceptual frequency axis (the knobs ``zone_size`` and
``centre`` go to ``zone.update`` first; ``step`` reads the zone's row sets); without one, the v1
row axis (half-height ``zone_size * rows`` around row ``centre * (rows - 1)``). ``evidence`` and
``hold`` go to both samplers (blur v2: the input's own code as evidence, codes that persist). With a one-level bundle and no macro map
this is exactly the v1 engine's ``ZoneSampler`` (same seed, same random stream). numpy only;
``step`` allocates nothing.
"""

from __future__ import annotations

import numpy as np

from vqblur.engine.blur.sampler import ZoneSampler

MACRO_SEED_OFFSET = 7919  # the macro sampler's seed = the micro sampler's + this


def macro_rows_of(rows: int, macro_factor: int) -> np.ndarray:
    """For each micro row, the macro row above it: [rows] intp."""
    return np.arange(rows, dtype=np.intp) // max(macro_factor, 1)


class CodeBlur:
    """Zone resampling of flat code columns; see the module docstring."""

    def __init__(self, micro_table, rows: int, levels: int = 1, *, codebook_size: int,
                 macro_table=None, rows_macro: int = 0, macro_factor: int = 0, seed: int = 0,
                 zone=None, evidence: float = 0.0, hold: int = 1, past: str = "output"):
        self.rows, self.levels, self.K = int(rows), int(levels), int(codebook_size)
        self.n_micro = self.levels * self.rows
        self.rows_macro = int(rows_macro) if macro_table is not None else 0
        self.n_codes = self.n_micro + self.rows_macro
        opts = {"evidence": evidence, "hold": hold, "past": past}
        self.micro = ZoneSampler(micro_table, self.rows, seed=seed, **opts)
        self.macro = (ZoneSampler(macro_table, self.rows_macro, seed=seed + MACRO_SEED_OFFSET, **opts)
                      if macro_table is not None else None)
        self.zone = zone
        self._zone_version = -1
        if zone is not None:
            self._none_micro = np.zeros(self.rows)
            self._none_macro = np.zeros(self.rows_macro)
            self.micro.set_rows(self._none_micro)
            if self.macro is not None:
                self.macro.set_rows(self._none_macro)
        self._under = macro_rows_of(self.rows, macro_factor)
        self._mask = np.zeros(self.rows, dtype=bool)
        self._mask_row = self._mask[None, :]
        self._macro_active = False
        self._views_of: tuple = (None, None)
        #: how much of the column is blurred in time (the shaper's time smear): live, all of it
        self.time_gate = 1.0

    @property
    def resampled(self) -> np.ndarray:
        """Micro rows whose finer levels the last step dropped (or, v1, rows resampled): [rows]."""
        return self._mask

    @property
    def macro_active(self) -> bool:
        """Whether the last step resampled the macro map (scale on, a macro map present)."""
        return self._macro_active

    def view_rows(self, clean: np.ndarray, out: np.ndarray, before: np.ndarray,
                  after: np.ndarray) -> None:
        """What the last step resampled, as ``rows`` codes before/after (for the live view and
        ``process --png``): micro level 0, or with scale on the macro codes repeated over the
        micro rows under them. ``before``/``after``: preallocated [rows] int arrays."""
        if self._macro_active:
            nm = self.n_micro
            np.take(clean[nm:], self._under, out=before)
            np.take(out[nm:], self._under, out=after)
        else:
            before[:] = clean[: self.rows]
            after[:] = out[: self.rows]

    def prepare_tables(self, micro_table, macro_table=None) -> tuple:
        """Both maps' tables stacked for :meth:`use_tables` (see ``ZoneSampler.prepare_table``)."""
        micro = self.micro.prepare_table(micro_table)
        macro = None
        if self.macro is not None:
            if macro_table is None:
                raise ValueError("this blur has a macro map: a palette needs its macro table too")
            macro = self.macro.prepare_table(macro_table)
        return micro, macro

    def use_tables(self, prepared: tuple) -> None:
        """Swap in tables from :meth:`prepare_tables`, between two steps."""
        self.micro.use_table(prepared[0])
        if self.macro is not None:
            self.macro.use_table(prepared[1])

    def reset(self, seed: int | None = None) -> None:
        self.micro.reset(seed)
        if self.macro is not None:
            self.macro.reset(None if seed is None else seed + MACRO_SEED_OFFSET)
        self._mask[:] = False

    def step(self, clean: np.ndarray, out: np.ndarray, zone_size: float, centre: float,
             temperature: float, scale: float = 0.0) -> np.ndarray:
        """clean [n_codes] (the encoder's) -> out [n_codes] (blurred; may not alias clean)."""
        if clean is not self._views_of[0] or out is not self._views_of[1]:
            self._make_views(clean, out)
        c_rest, o_rest, c_micro, o_micro, c_macro, o_macro, fine = self._views
        use_macro = self.macro is not None and scale >= 0.5
        if c_rest is not None:
            o_rest[:] = c_rest
        if self.zone is None:  # the v1 row axis
            self.micro.step(c_micro, 0.0 if use_macro else zone_size, centre, temperature, out=o_micro)
            if self.macro is not None:
                self.macro.step(c_macro, zone_size if use_macro else 0.0, centre, temperature, out=o_macro)
        else:  # the rows under the perceptual zone (the caller has updated it)
            z = self.zone
            if z.version != self._zone_version or use_macro != self._macro_active:
                self._zone_version = z.version
                self.micro.set_rows(self._none_micro if use_macro else z.micro_rows)
                if self.macro is not None:
                    self.macro.set_rows(z.macro_rows if use_macro else self._none_macro)
            self.micro.step_rows(c_micro, temperature, out=o_micro)
            if self.macro is not None:
                self.macro.step_rows(c_macro, temperature, out=o_macro)
        self._macro_active = use_macro
        if use_macro:
            self.macro.resampled.take(self._under, out=self._mask)
        else:
            self._mask[:] = self.micro.resampled
        if fine is not None:
            np.copyto(fine, self.K, where=self._mask_row)
        return out

    def _make_views(self, clean: np.ndarray, out: np.ndarray) -> None:
        """The slices ``step`` works on, made once per pair of buffers (the engine passes the
        same two every column)."""
        R, nm = self.rows, self.n_micro
        rest = self.n_codes > R
        self._views = (clean[R:] if rest else None, out[R:] if rest else None, clean[:R], out[:R],
                       clean[nm:], out[nm:],
                       out[R:nm].reshape(self.levels - 1, R) if self.levels > 1 else None)
        self._views_of = (clean, out)


def drop_finer_levels(grid: np.ndarray, resampled_rows: np.ndarray, levels: int, rows: int,
                      codebook_size: int) -> np.ndarray:
    """Offline: ``grid [n_codes, C]`` flat code columns; set micro levels 1..L-1 to K where
    ``resampled_rows [rows, C]`` is True (in place; returns grid)."""
    if levels > 1:
        fine = grid[rows:levels * rows].reshape(levels - 1, rows, -1)
        np.copyto(fine, codebook_size, where=resampled_rows[None])
    return grid
