"""`vqblur train`: train the VQ-VAE (single process, or under torchrun for DDP)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the VQ-VAE on rendered GM notes, NSynth or a folder of audio",
        description=(
            "Train the streamable 2-D VQ-VAE. Writes the config actually used, metrics.jsonl "
            "(every loss term, perplexity and codes in use), checkpoints and summary.json "
            "(training time and energy) into --out. Resume with --resume OUT/checkpoint.pt. "
            "Past one machine: torchrun --nproc-per-node N -m vqblur train ... (gloo on CPU, "
            "nccl on GPU)."
        ),
        epilog=(
            "examples:\n"
            "  vqblur train --config training/configs/default.toml --out runs/default\n"
            "  vqblur train --config training/configs/tiny.toml --set train.steps=50 --out /tmp/tiny\n"
            "  vqblur train --set data.source=folder --set data.path=~/samples --out runs/mine\n"
            "  vqblur train --resume runs/mine/checkpoint.pt --set train.lr=1e-3 --out runs/mine\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML config (tables audio, model, vq, data, train); default: built-in defaults")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--out", default="runs/default", help="run folder (default: runs/default)")
    p.add_argument("--resume", help="checkpoint.pt to continue from (its config is used; --set may change "
                   "its train / data / vq tables, e.g. --set train.lr=1e-3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from vqblur.common.errors import UserError
    from vqblur.training.config import load_config
    from vqblur.training.train import train

    if args.resume:  # the checkpoint's config, with --set on its train / data / vq tables
        if args.config:
            raise UserError("--resume uses the checkpoint's config: leave out --config "
                            "(--set train.KEY=VALUE changes the resumed run)")
        cfg = load_config(None)
    else:
        cfg = load_config(args.config, args.overrides)
    summary = train(cfg, args.out, resume=args.resume, progress=not args.no_progress,
                    resume_overrides=args.overrides if args.resume else None)
    if summary:
        print(json.dumps(summary, indent=2))
    return 0
