"""nb_table.npz: written by save_nb_table, read by load_nb_table, refused with the file named."""

import numpy as np
import pytest

from vqblur.engine.blur import NBTable, ZoneSampler, load_nb_table
from vqblur.common.errors import BundleError
from vqblur.training.nb_fit import fit_nb, save_nb_table

K, R = 8, 6


def _table():
    rng = np.random.default_rng(0)
    return fit_nb([rng.integers(0, K, (R, 30)) for _ in range(3)], K, alpha=1.0)


def test_roundtrip(tmp_path):
    t = _table()
    path = save_nb_table(tmp_path / "nb_table.npz", t)
    loaded = load_nb_table(path, rows=R, codebook_size=K)
    assert isinstance(loaded, NBTable)
    assert loaded.rows == R and loaded.codebook_size == K and loaded.n_cells == 3 * R * 30
    assert loaded.log_neigh.dtype == np.float32
    np.testing.assert_array_equal(loaded.log_neigh, t["log_neigh"])
    assert loaded.offset_list == [tuple(o) for o in t["offsets"].tolist()]
    assert ZoneSampler(str(path), R).rows == R  # a path works too


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.pop("log_neigh"), "missing keys"),
        (lambda d: d.update(log_row=d["log_row"][:-1]), "rows"),
        (lambda d: d.update(log_neigh=d["log_neigh"][:, :-1]), "log_neigh has shape"),
        (lambda d: d.update(log_prior=d["log_prior"][:-1]), "log_row has shape"),
        (lambda d: d.update(offsets=np.zeros((8, 3), np.int64)), "offsets has shape"),
        (lambda d: d.update(log_prior=np.full(K, np.nan, np.float32)), "NaN"),
    ],
)
def test_bad_tables_are_refused_naming_the_file(tmp_path, change, words):
    d = dict(_table())
    change(d)
    path = tmp_path / "broken_nb.npz"
    np.savez(path, **d)
    with pytest.raises(BundleError) as err:
        load_nb_table(path, rows=R, codebook_size=K)
    assert "broken_nb.npz" in str(err.value) and words in str(err.value)


def test_wrong_bundle_shape_and_unreadable_file(tmp_path):
    path = save_nb_table(tmp_path / "nb_table.npz", _table())
    with pytest.raises(BundleError, match="codebook size 8, expected 256"):
        load_nb_table(path, rows=R, codebook_size=256)
    with pytest.raises(BundleError, match="nb_table.npz"):
        ZoneSampler(load_nb_table(path), rows=20)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="junk.npz"):
        load_nb_table(junk)
    with pytest.raises(BundleError, match="missing.npz"):
        load_nb_table(tmp_path / "missing.npz")
