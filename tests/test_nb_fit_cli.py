"""`vqblur fit-nb` from saved codemaps: writes the table and the evaluation JSON, prints the table."""

import json

import numpy as np

from vqblur.cli import main
from vqblur.commands.fit_nb import load_codemaps, save_codemaps
from vqblur.engine.blur import load_nb_table

K, R = 16, 8


def _maps(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        T = int(rng.integers(5, 30))
        walk = np.cumsum(rng.random(T) < 0.2)
        out.append(((np.arange(R)[:, None] // 2 + walk[None, :]) % K).astype(np.int64))
    return out


def test_fit_nb_from_codemaps(tmp_path, capsys):
    data = tmp_path / "codes.npz"
    splits = {"train": _maps(12, 0), "valid": _maps(3, 1), "test": _maps(3, 2)}
    save_codemaps(data, splits, K)
    back, k = load_codemaps(data)
    assert k == K and all((a == b).all() for a, b in zip(back["valid"], splits["valid"]))

    out = tmp_path / "table" / "nb_table.npz"
    rc = main(["fit-nb", "unused-checkpoint", "--data", str(data), "--out", str(out),
               "--alpha", "0.5", "--quiet"])
    assert rc == 0
    table = load_nb_table(out, rows=R, codebook_size=K)
    assert table.n_cells == sum(m.size for m in splits["train"]) and table.alpha == 0.5
    report = json.loads((tmp_path / "table" / "nb_table.eval.json").read_text())
    assert report["table_bytes"] == out.stat().st_size
    assert set(report["evaluation"]) == {"valid", "test"}
    assert list(report["evaluation"]["test"]["models"]) == ["unigram", "row_only", "full", "causal"]
    printed = capsys.readouterr().out
    assert "| valid | full |" in printed and "| test | causal |" in printed


def test_fit_nb_user_errors(tmp_path, capsys):
    assert main(["fit-nb", "x", "--data", str(tmp_path / "nope.npz")]) == 2
    assert "not found" in capsys.readouterr().err
    save_codemaps(tmp_path / "c.npz", {"train": _maps(2, 0)}, K)
    assert main(["fit-nb", "x", "--data", str(tmp_path / "c.npz"), "--neighbourhood", "0:0"]) == 2
    assert "--neighbourhood" in capsys.readouterr().err
