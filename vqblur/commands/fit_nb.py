"""`vqblur fit-nb`: fit the Naive Bayes table of a trained model's codemaps, and evaluate it.

Encodes the training corpus with the checkpoint's encoder
(``vqblur.training.encode.encode_corpus``), counts the codes and their neighbours
(``vqblur.training.nb_fit.fit_nb``), scores the table on the valid and test splits against
the unigram and row-only baselines, for the full and the causal neighbourhood, prints the
table, and writes ``nb_table.npz`` plus ``<out stem>.eval.json`` next to it.
"""

from __future__ import annotations

import argparse
import sys

from vqblur.commands.argtypes import positive_int as _positive_int, positive_float as _positive_float


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit-nb",
        help="fit the Naive Bayes neighbour table of a trained model's codemaps",
        description=(
            "Encode the training corpus with CHECKPOINT's encoder, fit the Laplace-smoothed "
            "Naive Bayes table P(c), P(row | c), P(neighbour at offset o | c), evaluate it on "
            "the valid and test splits (negative log-likelihood, top-1/top-5 accuracy of the "
            "centre code against the unigram and row-only baselines, full and causal "
            "neighbourhoods), print the table, write the npz and <stem>.eval.json next to it."
        ),
        epilog=(
            "examples:\n"
            "  vqblur fit-nb runs/default --out runs/default/nb_table.npz\n"
            "  vqblur fit-nb runs/default/model.pt --alpha 0.5 --neighbourhood causal\n"
            "  vqblur fit-nb runs/default --neighbourhood=-1:0,0:-1,1:0   # explicit d_row:d_col list\n"
            "  vqblur fit-nb runs/default --save-codemaps codes.npz      # keep the encoded corpus\n"
            "  vqblur fit-nb runs/default --data codes.npz               # ... and refit from it\n"
            "  vqblur fit-nb runs/default --map macro --out runs/default/nb_macro.npz   # codec v2's macro map"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="trained model: a run folder (its model.pt) or a .pt file")
    p.add_argument("--out", default="nb_table.npz", metavar="FILE",
                   help="output table (default nb_table.npz); the evaluation goes to "
                        "<stem>.eval.json beside it")
    p.add_argument("--alpha", type=_positive_float, default=1.0, metavar="A",
                   help="Laplace smoothing (default 1.0)")
    p.add_argument("--neighbourhood", "--neighborhood", default="8", metavar="8|causal|LIST",
                   help="offsets fitted: 8 (the 8-neighbourhood, default), causal (previous column "
                        "+ same column rows +-1), or d_row:d_col pairs like -1:0,0:-1")
    p.add_argument("--data", default=None, metavar="CODEMAPS.npz",
                   help="use codemaps saved by --save-codemaps instead of encoding the corpus")
    p.add_argument("--save-codemaps", default=None, metavar="FILE",
                   help="also save the encoded codemaps (train/valid/test) to this npz")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="encode at most N clips per split")
    p.add_argument("--max-eval-cells", type=_positive_int, default=2_000_000, metavar="N",
                   help="score a random subset of at most N cells per split (default 2000000)")
    p.add_argument("--map", default="micro", choices=("micro", "macro"),
                   help="which codemap to model (codec v2): micro = the first micro level "
                        "(default), macro = the coarse macro map")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


SPLITS = ("train", "valid", "test")


def save_codemaps(path, splits: dict, codebook_size: int) -> None:
    """{split: [codemap [rows, T]]} -> npz: <split>_codes [rows, sum T], <split>_lengths."""
    import numpy as np

    arrays = {"codebook_size": np.int64(codebook_size)}
    for name, maps in splits.items():
        rows = maps[0].shape[0] if maps else 0
        arrays[f"{name}_codes"] = (np.concatenate(maps, axis=1) if maps
                                   else np.zeros((rows, 0), np.int64)).astype(np.int64)
        arrays[f"{name}_lengths"] = np.array([m.shape[1] for m in maps], np.int64)
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def load_codemaps(path) -> tuple[dict, int]:
    import numpy as np

    from vqblur.common.errors import UserError

    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: codemap file not found") from None
    except Exception as exc:
        raise UserError(f"{path}: cannot read codemaps ({exc})") from None
    with z:
        if "codebook_size" not in z.files or "train_codes" not in z.files:
            raise UserError(f"{path}: not a codemap file (needs codebook_size and train_codes; "
                            "write one with --save-codemaps)")
        K = int(z["codebook_size"])
        out = {}
        for name in SPLITS:
            if f"{name}_codes" not in z.files:
                continue
            codes, lengths = z[f"{name}_codes"], z[f"{name}_lengths"]
            if int(lengths.sum()) != codes.shape[1]:
                raise UserError(f"{path}: {name}_lengths do not add up to {name}_codes' columns")
            out[name] = [m for m in np.split(codes, np.cumsum(lengths)[:-1], axis=1)]
    return out, K


def run(args) -> int:
    import json
    import os
    import time

    import numpy as np

    from vqblur.engine.blur import parse_offsets
    from vqblur.common.errors import UserError
    from vqblur.training.nb_fit import evaluate_nb, fit_nb, format_eval_table, save_nb_table

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        offsets = parse_offsets(args.neighbourhood)
    except ValueError as exc:
        raise UserError(f"--neighbourhood: {exc}") from None
    t0 = time.perf_counter()

    if args.data:
        splits, K = load_codemaps(args.data)
        if args.limit:
            splits = {k: v[: args.limit] for k, v in splits.items()}
        say(f"vqblur fit-nb: codemaps from {args.data} (K = {K})")
    else:
        if not os.path.exists(args.checkpoint):
            raise UserError(f"{args.checkpoint}: checkpoint not found")
        from vqblur.training.checkpoint import load_checkpoint
        from vqblur.training.encode import encode_corpus

        _, cfg, _ = load_checkpoint(args.checkpoint)
        K = int(cfg.model.codebook_size)
        splits = {}
        for name in SPLITS:
            say(f"vqblur fit-nb: encoding the {name} split with {args.checkpoint}")
            try:
                splits[name] = encode_corpus(args.checkpoint, name, limit=args.limit,
                                             progress=not args.quiet, map_name=args.map)
            except (FileNotFoundError, KeyError, ValueError) as exc:
                if name == "train":
                    raise
                say(f"  no {name} split ({exc}); not evaluated on it")
        if args.save_codemaps:
            save_codemaps(args.save_codemaps, splits, K)
            say(f"  codemaps -> {args.save_codemaps}")
    train = [m for m in splits.get("train", []) if m.size]
    if not train:
        raise UserError("no training codemaps to fit (empty train split)")
    rows = train[0].shape[0]
    t_enc = time.perf_counter() - t0

    say(f"  fitting: {len(train)} codemaps, {sum(m.size for m in train)} cells, K = {K}, "
        f"rows = {rows}, alpha = {args.alpha}, offsets {offsets}")
    table = fit_nb(train, K, offsets=offsets, alpha=args.alpha, progress=not args.quiet)
    out = save_nb_table(args.out, table)
    size = out.stat().st_size
    t_fit = time.perf_counter() - t0 - t_enc

    neigh = {"full": "full"}
    if any(dc < 0 or (dc == 0 and dr != 0) for dr, dc in offsets) and any(dc > 0 for _, dc in offsets):
        neigh["causal"] = "causal"
    elif all(dc <= 0 for _, dc in offsets):
        neigh = {"causal": "full"}  # a causal table: its full neighbourhood is the causal one
    results = {}
    for name in ("valid", "test"):
        maps = [m for m in splits.get(name, []) if m.size]
        if not maps:
            continue
        say(f"  evaluating on {name}: {len(maps)} codemaps")
        results[name] = evaluate_nb(table, maps, neigh, max_cells=args.max_eval_cells,
                                    progress=not args.quiet)
    used = np.bincount(np.concatenate([m.ravel() for m in train]), minlength=K)
    summary = {
        "checkpoint": str(args.checkpoint),
        "data": args.data,
        "map": args.map,
        "table": str(out),
        "table_bytes": size,
        "codebook_size": K,
        "rows": rows,
        "alpha": args.alpha,
        "offsets": [list(o) for o in offsets],
        "train_codemaps": len(train),
        "train_cells": int(table["n_cells"]),
        "codes_used_in_train": int((used > 0).sum()),
        "seconds": {"encode": round(t_enc, 2), "fit": round(t_fit, 2),
                    "evaluate": round(time.perf_counter() - t0 - t_enc - t_fit, 2)},
        "evaluation": results,
    }
    json_path = out.with_name(out.stem + ".eval.json")
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    if results:
        print(format_eval_table(results, title=f"Naive Bayes table {out} (alpha {args.alpha})"))
    else:
        print("(no valid/test codemaps: table not evaluated)")
    say(f"  wrote {out} ({size / 1e6:.2f} MB; {int((used > 0).sum())}/{K} codes used in train) "
        f"and {json_path}")
    return 0
