"""Is there a stronger prior than the Naive Bayes table for the streaming blur? (issue 18)

The streaming sampler draws each zone cell from the causal neighbourhood only: the previous
column's rows r-1, r, r+1 and the same column's rows r-1, r+1 (``OFFSETS_CAUSAL``). This script
fits two models of exactly that conditional, p(code | row, 5 causal neighbours), on the codemaps
``vqblur fit-nb ... --save-codemaps`` wrote, and scores them on the held-out test split against
the shipped NB table (its causal factors), per cell, in nats:

* ``loglinear``: NB's own form, ``b[r, c] + sum_o W[o, n_o, c]``, trained discriminatively (maximum
  conditional likelihood, Adam) from the NB table, tempered to its best temperature, as its
  start. It *is* an NB-format table
  (``log_prior`` 0, ``log_row`` = b, ``log_neigh`` = W; a missing neighbour adds 0, as in the
  sampler, and the edge rows' bias absorbs it): the engine samples it with no change, at the
  same cost per column. Scored with :func:`vqblur.training.nb_fit.evaluate_nb`, the NB table's scorer.
* ``mlp``: a small neural prior (an embedding per neighbour and one for the row, one hidden
  layer); not a table, so the engine cannot sample it as it stands (``--grid`` skips it).

``--grid`` then runs the bench's playability grid (``vqblur.measure.playability``: 12 real recordings,
the same settings and figures as ``vqblur bench``) with the loglinear table in place of the
micro NB table (the macro map keeps its NB table), next to the shipped engine.

Usage (a few minutes each step on 2 cores)::

    vqblur fit-nb training/default_run --limit 250 --save-codemaps /tmp/codes.npz --out /tmp/nb.npz
    python scripts/prior_experiment.py /tmp/codes.npz --grid --out /tmp/prior.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def neighbour_features(maps: list[np.ndarray], K: int, offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of every map: its code ``[N]``, row ``[N]`` and causal neighbours ``[N, O]``
    (``K`` where the neighbour is off the map): the NB scorer's own cell indices
    (``_cell_indices``), less each offset's block start in the stacked table."""
    from vqblur.training.nb_fit import _cell_indices

    O, B = len(offsets), K + 1
    codes, rows, neigh = [], [], []
    for m in maps:
        m = np.asarray(m, np.int64)
        idx = _cell_indices(m, offsets, K)  # [R*T, O + 1]: o * B + code, then O * B + row
        codes.append(m.ravel())
        rows.append(idx[:, O] - O * B)
        neigh.append(idx[:, :O] - B * np.arange(O))
    return np.concatenate(codes), np.concatenate(rows), np.concatenate(neigh)


def causal_start(table: dict, offsets, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The NB table's causal factors, tempered (divided by ``temperature``: NB counts correlated
    neighbours as independent evidence and is over-confident), as the log-linear model's start:
    W ``[O, K, K]`` (neighbour code, centre code), b ``[R, K]``."""
    from vqblur.engine.blur import select_offsets

    sel = select_offsets(table["offsets"], [tuple(o) for o in offsets])
    W = np.asarray(table["log_neigh"], np.float32)[sel]
    b = (np.asarray(table["log_prior"], np.float32)[None, :] + np.asarray(table["log_row"], np.float32))
    return W / np.float32(temperature), b / np.float32(temperature)


def train(model, data, steps: int, lr: float, batch: int, seed: int, label: str) -> float:
    """Adam on the mean NLL of random train batches; returns the seconds it took."""
    import torch

    from vqblur.common.progress import progress_iter

    c, r, n = data
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for _ in progress_iter(range(steps), desc=label, unit="step"):
        i = torch.randint(0, len(c), (batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(r[i], n[i]), c[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def make_models(K: int, R: int, O: int, W0: np.ndarray, b0: np.ndarray, hidden: int, dim: int):
    import torch
    from torch import nn

    class LogLinear(nn.Module):
        """logits[c] = b[r, c] + sum_o W[o, n_o, c]; a missing neighbour (code K) adds 0."""

        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.from_numpy(W0.copy()))  # [O, K, K]
            self.b = nn.Parameter(torch.from_numpy(b0.copy()))  # [R, K]

        def forward(self, r, n):  # [B], [B, O] -> [B, K]
            Wz = torch.cat([self.W, self.W.new_zeros(O, 1, K)], 1)  # [O, K + 1, K]
            return self.b[r] + Wz[torch.arange(O)[None, :], n].sum(1)

    class MLP(nn.Module):
        """An embedding per neighbour offset (K + 1 codes: K = missing) and one for the row,
        concatenated, one GELU layer, logits over K."""

        def __init__(self):
            super().__init__()
            self.emb = nn.Parameter(0.1 * torch.randn(O, K + 1, dim))
            self.row = nn.Embedding(R, dim)
            self.net = nn.Sequential(nn.Linear((O + 1) * dim, hidden), nn.GELU(), nn.Linear(hidden, K))

        def forward(self, r, n):
            e = self.emb[torch.arange(O)[None, :], n].flatten(1)  # [B, O * dim]
            return self.net(torch.cat([e, self.row(r)], 1))

    return LogLinear(), MLP()


def as_nb_table(model, template: dict, offsets) -> dict:
    """The trained log-linear model as an NB-format table dict (float32)."""
    W = model.W.detach().numpy().astype(np.float32)
    b = model.b.detach().numpy().astype(np.float32)
    K = W.shape[-1]
    out = {k: v for k, v in template.items()}
    out.update(log_prior=np.zeros(K, np.float32), log_row=b, log_neigh=W,
               offsets=np.asarray(offsets, np.int64).reshape(-1, 2), border=np.str_("loglinear"))
    return out


def nll_of(model, data, chunk: int = 65536) -> tuple[float, float]:
    """Mean NLL (nats) and top-1 accuracy of a torch model over all cells."""
    import torch

    c, r, n = data
    tot, hit = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(c), chunk):
            lg = model(r[s:s + chunk], n[s:s + chunk])
            tot += float(torch.nn.functional.cross_entropy(lg, c[s:s + chunk], reduction="sum"))
            hit += int((lg.argmax(1) == c[s:s + chunk]).sum())
    return tot / len(c), hit / len(c)


def grid(table_ll: dict, bundle_dir: Path, log) -> dict:
    """The bench's playability grid, shipped engine and the engine with the log-linear table."""
    from vqblur.measure import playability
    from vqblur.measure.run import PLAYABILITY_CLIPS, PLAYABILITY_SECONDS
    from vqblur.measure.sets import real_set
    from vqblur.engine.blur import load_nb_table
    from vqblur.engine.core import Engine

    shipped = Engine(str(bundle_dir), seed=0)
    sr = shipped.sample_rate
    clips = playability.pick_clips(real_set(sr).clips, PLAYABILITY_CLIPS, PLAYABILITY_SECONDS, sr)
    out = {}
    swapped = Engine(str(bundle_dir), seed=0)
    b = swapped.bundle
    macro = load_nb_table(b.nb_macro_path) if b.nb_macro_path is not None else None
    swapped.use_tables(table_ll, macro, "loglinear")  # checked and stacked here, in at the first column
    runs = len(clips) * (len(playability.GRID) + len(playability.QUIET_SETTINGS))
    for name, eng in (("nb", shipped), ("loglinear", swapped)):
        log(f"playability grid with the {name} micro table: {len(clips)} clips")
        rows = playability.run_grid(eng, clips)
        out[name] = {"rows": playability.as_dicts(rows), "targets": playability.check_targets(rows, runs)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("codes", help="codemaps npz from `vqblur fit-nb --save-codemaps` (the micro map)")
    ap.add_argument("--bundle", default=str(ROOT / "presets" / "default_bundle"))
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--mlp-lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--no-mlp", action="store_true", help="skip the neural prior")
    ap.add_argument("--grid", action="store_true", help="also run the playability grid")
    ap.add_argument("--save-table", default=None, metavar="NPZ", help="write the log-linear table here")
    ap.add_argument("--out", default=None, metavar="JSON")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    import torch

    from vqblur.training.nb_fit import _as_dict, evaluate_nb, save_nb_table
    from vqblur.commands.fit_nb import load_codemaps
    from vqblur.engine.blur import OFFSETS_CAUSAL, load_nb_table
    from vqblur.engine.bundle import load_bundle

    torch.manual_seed(a.seed)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    splits, K = load_codemaps(a.codes)
    b = load_bundle(a.bundle)
    nb = dict(_as_dict(load_nb_table(b.nb_path)))
    offsets = [tuple(o) for o in OFFSETS_CAUSAL]
    R = int(np.asarray(nb["log_row"]).shape[0])

    def tensors(maps):
        c, r, n = neighbour_features(maps, K, offsets)
        return torch.from_numpy(c), torch.from_numpy(r), torch.from_numpy(n)

    tr, te = tensors(splits["train"]), tensors(splits["test"])
    log(f"{len(tr[0])} train cells, {len(te[0])} test cells, K {K}, {R} rows, offsets {offsets}")
    res: dict = {"codes": str(a.codes), "bundle": str(a.bundle), "train_cells": len(tr[0]),
                 "test_cells": len(te[0]), "steps": a.steps, "batch": a.batch, "lr": a.lr, "mlp_lr": a.mlp_lr, "models": {}}

    def scored(table, name):
        ev = evaluate_nb(table, splits["test"], offsets={"causal": "causal"}, max_cells=None)
        m = ev["models"]["causal"]
        res["models"][name] = {"nll_nats": m["nll_nats"], "top1": m["top1"],
                               "best_temperature": m["best_temperature"],
                               "nll_at_best_temperature_nats": m["nll_at_best_temperature_nats"]}
        log(f"{name}: test NLL {m['nll_nats']:.3f} nats/cell at T 1, {m['nll_at_best_temperature_nats']:.3f} at "
            f"its best T {m['best_temperature']:g}; top-1 {m['top1']:.3f}")

    scored(nb, "nb")
    W0, b0 = causal_start(nb, offsets, res["models"]["nb"]["best_temperature"])
    ll_model, mlp = make_models(K, R, len(offsets), W0, b0, a.hidden, a.dim)
    s = train(ll_model, tr, a.steps, a.lr, a.batch, a.seed, "loglinear")
    table_ll = as_nb_table(ll_model, nb, offsets)
    scored(table_ll, "loglinear")
    res["models"]["loglinear"]["train_s"] = round(s, 1)
    if a.save_table:
        save_nb_table(a.save_table, table_ll)
    if not a.no_mlp:
        s = train(mlp, tr, a.steps, a.mlp_lr, a.batch, a.seed, "mlp")
        nll, top1 = nll_of(mlp, te)
        res["models"]["mlp"] = {"nll_nats": nll, "top1": top1, "train_s": round(s, 1),
                                "parameters": sum(p.numel() for p in mlp.parameters())}
        log(f"mlp: test NLL {nll:.3f} nats/cell, top-1 {top1:.3f}")
    nb_best = res["models"]["nb"]["nll_at_best_temperature_nats"]
    for k, m in res["models"].items():
        if k != "nb":
            m["gain_over_nb_best_t_nats"] = nb_best - m["nll_nats"]
    if a.grid:
        res["playability"] = grid(table_ll, Path(a.bundle), log)
        for name, g in res["playability"].items():
            log(f"[{name}]")
            for row in g["rows"]:
                log(f"  {'Q ' if row['quiet'] else '  '}{row['setting']:<52} level {row['level_median_abs_db']:.2f}/"
                    f"{row['level_worst_db']:+.2f} lim {row['limited_runs']} flux {row['flux_median']:.2f} "
                    f"con {row['contrast_median']:.2f} change {row['change_median_db']:.2f} "
                    f"centroid {row['centroid_hz']:.0f}")
    text = json.dumps(res, indent=1, default=float)
    if a.out:
        Path(a.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
