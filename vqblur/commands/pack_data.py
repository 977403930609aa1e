"""`vqblur pack-data`: a config's training data in one compact file, for a machine without it."""

from __future__ import annotations

import argparse
import textwrap

from vqblur.commands.argtypes import positive_float as _positive_float


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pack-data",
        help="pack a config's training data into one .npz (to train where it cannot be rendered)",
        description="\n\n".join(textwrap.fill(par, 78) for par in (
            "Load the training data a config names (rendering it first if needed), keep short "
            "active excerpts of each group (the mix source: FluidR3 renders, MuseScore renders, "
            "packaged recordings) within a size budget shared by the groups' weights, plus the "
            "validation clips, and write them as 16-bit samples into one numpy .npz.",
            "Train from it anywhere numpy and torch are, with no soundfonts, FluidSynth, "
            "soundfile or soxr: --set data.source=packed --set data.path=OUT.npz (the audio, "
            "model and train tables as in the config). Made for a lent GPU machine, which has "
            "none of them and takes at most 64 MiB with it.",
        )),
        epilog=(
            "examples:\n"
            "  vqblur pack-data data/pack.npz --config training/configs/default.toml\n"
            "  vqblur pack-data data/pack.npz --config training/configs/v5l.toml --max-mb 30\n"
            "  vqblur train --config training/configs/default.toml \\\n"
            "      --set data.source=packed --set data.path=data/pack.npz --out runs/gpu"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT.npz", help="the pack to write")
    p.add_argument("--config", help="TOML config whose data table is packed (default: built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set data.train_count=1000 (repeatable)")
    p.add_argument("--max-mb", type=_positive_float, default=36.0, metavar="MB",
                   help="size of the samples in all, in 10^6 bytes (default: 36)")
    p.add_argument("--excerpt", type=_positive_float, default=0.4, metavar="SECONDS",
                   help="length of each excerpt (default: 0.4; longer: fewer clips)")
    p.add_argument("--valid-seconds", type=_positive_float, default=2.0, metavar="SECONDS",
                   help="seconds kept of each validation clip, from its start (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of which clips and excerpts (default: 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import time
    from pathlib import Path

    from vqblur.common.errors import UserError
    from vqblur.training.config import load_config
    from vqblur.training.data.packed import write_pack
    from vqblur.training.train import segment_samples

    cfg = load_config(args.config, args.overrides)
    seg = segment_samples(cfg) / cfg.audio.sample_rate
    if args.excerpt < seg:
        raise UserError(f"--excerpt {args.excerpt:g} s is shorter than a training segment ({seg:.3f} s)")
    t0 = time.perf_counter()
    groups, weights, valid = load_source_groups(cfg)
    valid = valid[: cfg.train.eval_examples]
    meta = write_pack(args.out, groups, weights, valid, sample_rate=cfg.audio.sample_rate,
                      max_mb=args.max_mb, excerpt_seconds=args.excerpt,
                      valid_seconds=args.valid_seconds, seed=args.seed,
                      source=dataclasses.asdict(cfg.data))
    size = Path(args.out).stat().st_size / 1e6
    for i, (g, s, k) in enumerate(zip(groups, meta["seconds"], meta["excerpts"])):
        print(f"group {i}: {k} excerpts of {len(g)} clips, {s:.1f} s (weight {weights[i]:g})")
    print(f"validation: {meta['valid_clips']} clips; wrote {args.out} ({size:.1f} MB) "
          f"in {time.perf_counter() - t0:.0f} s")
    print(f"train from it: vqblur train --config {args.config or '<config>'} "
          f"--set data.source=packed --set data.path={args.out}")
    return 0


def load_source_groups(cfg) -> tuple[list[list], list[float], list]:
    """The config's own training data as groups (mix: three; any other source: one) with their
    weights and validation clips, loaded as the trainer loads them."""
    from vqblur.common.errors import UserError
    from vqblur.training.train import _load_data

    if cfg.data.source == "packed":
        raise UserError("the config's data is already a pack")
    data, _, valid, _ = _load_data(cfg, 0)
    if cfg.data.source == "mix":  # (the mix's data is its groups)
        return [list(g) for g in data], list(cfg.data.mix_weights), list(valid)
    return [list(data)], [1.0], list(valid)
