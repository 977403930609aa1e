"""`vqblur render-data`: render the NSynth-like training corpus from GM soundfonts."""

from __future__ import annotations

import argparse
import textwrap

SPLIT_CHOICES = ("train", "valid", "test", "all")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render-data",
        help="render the NSynth-like corpus from General MIDI soundfonts (cached)",
        description="\n\n".join(textwrap.fill(par, 78) for par in (
            "Render an NSynth-like corpus with FluidSynth: melodic GM programs x pitches "
            "across each instrument's range x velocities, drum-kit hits (bank 128) and short "
            "polyphonic phrases (chords, arpeggios, duets). Each example is 4 s at 48 kHz "
            "(note held 3 s, then released), mono 16-bit wav, listed in an examples.json in "
            "NSynth's own format.",
            "Splits: 'train' and 'valid' come from FluidR3_GM.sf2, and 'valid' holds out whole "
            "instruments (a fixed set of programs and kits never in 'train'); 'test' comes "
            "from a different soundfont, TimGM6mb.sf2.",
            "Output: DIR/nsynth-gm-SPLIT/{examples.json,params.json,audio/*.wav}. Running it "
            "again with the same parameters reuses what is there; different parameters "
            "re-render that split. Same parameters give the same bytes, for any --workers.",
        )),
        epilog=(
            "examples:\n"
            "  vqblur render-data                          # all splits, default sizes\n"
            "  vqblur render-data --split train --count 5000 --workers 2\n"
            "  vqblur render-data --root /data/vqblur --split test\n"
            "The trainer renders missing splits itself (data source 'gm'); this command "
            "renders them ahead of time."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--root", metavar="DIR", default=None,
        help="cache folder (default: $VQBLUR_DATA, else ~/.cache/vqblur/data)")
    p.add_argument(
        "--split", choices=SPLIT_CHOICES, default="all",
        help="which split to render (default: all)")
    p.add_argument(
        "--count", type=int, default=None, metavar="N",
        help="examples per split (default: train 2000, valid 200, test 200); about 70%% "
             "single notes, 10%% drum hits, 20%% phrases")
    p.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="parallel render processes (default: all CPU cores)")
    p.add_argument(
        "--seed", type=int, default=0, metavar="N",
        help="seed that picks the examples from the full grid (default: 0)")
    p.add_argument(
        "--sample-rate", type=int, default=48000, metavar="HZ",
        help="sample rate of the rendered audio (default: 48000)")
    p.add_argument(
        "--force", action="store_true",
        help="render again even if the cache matches")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from vqblur.common.errors import UserError
    from vqblur.training.data.corpus import default_data_root
    from vqblur.training.data.render_gm import SPLITS, render_split

    if args.count is not None and args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    root = Path(args.root).expanduser() if args.root else default_data_root()
    splits = SPLITS if args.split == "all" else (args.split,)
    for split in splits:
        t0 = time.perf_counter()
        d = render_split(root, split, args.count, seed=args.seed, sample_rate=args.sample_rate,
                         workers=args.workers, force=args.force)
        n = len(json.loads((d / "examples.json").read_text()))
        print(f"{split}: {n} examples in {d} ({time.perf_counter() - t0:.1f} s)")
    return 0
