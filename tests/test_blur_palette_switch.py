"""A palette switch (``Engine.load_palette``): another bundle's Naive Bayes tables, same codec.
The blur then draws other codes; the switch lands between two code columns, with no jump in the
output beyond what the blur itself moves, and with output never past the limiter's bounds;
tables that do not fit the model are refused with a message naming the file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vqblur.common.errors import BundleError
from vqblur.engine.bundle import default_bundle_path, load_bundle, write_manifest
from vqblur.engine.core import Engine, Params

SR = 48000


def _palette(tmp_path, name, change):
    """A copy of the shipped bundle whose micro and macro tables are changed by ``change(d)``."""
    root = tmp_path / name
    shutil.copytree(default_bundle_path(), root)
    for f in ("nb_table.npz", "nb_macro.npz"):
        if (root / f).exists():
            with np.load(root / f) as z:
                d = {k: z[k] for k in z.files}
            change(d)
            np.savez(root / f, **d)
    write_manifest(root, json.loads((root / "manifest.json").read_text()))
    return root


def _signal(n):
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(n)).astype(np.float32)


def test_switch_changes_the_codes_between_columns_without_a_jump(tmp_path):
    def reverse_prior(d):  # a table that prefers other codes
        d["log_prior"] = d["log_prior"][::-1].copy()
        d["log_row"] = d["log_row"][:, ::-1].copy()

    pal = _palette(tmp_path, "reversed", reverse_prior)
    p = Params(zone_size=0.5, centre=0.4, temperature=0.5)
    x = _signal(SR)
    half = SR // 2
    a = Engine(load_bundle(default_bundle_path()), p, seed=1)
    b = Engine(load_bundle(default_bundle_path()), p, seed=1)
    seen_a, seen_b = [], []
    a.code_hook = lambda ch, lm, clean, blurred: seen_a.append(blurred.copy())
    b.code_hook = lambda ch, lm, clean, blurred: seen_b.append(blurred.copy())
    ya = np.concatenate([a.process(x[:half]), a.process(x[half:])])
    yb0 = b.process(x[:half])
    assert b.load_palette(pal) == "reversed" and b.palette == "reversed"
    yb = np.concatenate([yb0, b.process(x[half:])])
    n0 = len(yb0) // 160
    assert all(np.array_equal(u, v) for u, v in zip(seen_a[:n0], seen_b[:n0]))  # before: the same
    assert np.array_equal(ya[:half], yb[:half])
    after = np.mean([np.mean(u != v) for u, v in zip(seen_a[n0:], seen_b[n0:])])
    assert after > 0.02  # after: other codes
    assert np.abs(yb).max() <= 1.0
    # no click at the switch: the sample-to-sample step there is no larger than the signal's own
    steps = np.abs(np.diff(yb))
    assert steps[half - 480: half + 4800].max() <= 1.5 * steps[: half - 480].max() + 1e-3


def test_a_table_that_does_not_fit_is_refused(tmp_path):
    def fewer_codes(d):
        d["log_prior"] = d["log_prior"][:128].copy()
        d["log_row"] = d["log_row"][:, :128].copy()
        d["log_neigh"] = d["log_neigh"][:, :128, :128].copy()
        d["codebook_size"] = np.int64(128)

    bad = _palette(tmp_path, "bad", fewer_codes)
    eng = Engine(load_bundle(default_bundle_path()))
    with pytest.raises(BundleError) as e:
        eng.load_palette(bad)
    assert "bad" in str(e.value) or "nb_table" in str(e.value)
    assert eng.palette == "default_bundle"


def test_tables_in_memory_switch_as_a_palette_does(tmp_path):
    """``Engine.use_tables``: the same switch from tables in memory (what ``load_palette`` reads
    from a bundle), same codes as the palette from disk."""
    from vqblur.engine.blur import load_nb_table

    def reverse_prior(d):
        d["log_prior"] = d["log_prior"][::-1].copy()
        d["log_row"] = d["log_row"][:, ::-1].copy()

    pal = load_bundle(_palette(tmp_path, "reversed", reverse_prior))
    micro = load_nb_table(pal.nb_path)
    macro = load_nb_table(pal.nb_macro_path) if pal.nb_macro_path is not None else None
    p = Params(zone_size=0.5, centre=0.4, temperature=0.5)
    x = _signal(SR // 2)
    from_disk, in_memory, shipped = (Engine(load_bundle(default_bundle_path()), p, seed=1) for _ in range(3))
    from_disk.load_palette(pal)
    assert in_memory.use_tables(micro, macro, "mine") == "mine" and in_memory.palette_pending
    y_disk, y_mem, y_shipped = (e.process(x) for e in (from_disk, in_memory, shipped))
    assert not in_memory.palette_pending
    np.testing.assert_array_equal(y_mem, y_disk)
    assert np.abs(y_mem - y_shipped).max() > 1e-3  # the tables were switched
