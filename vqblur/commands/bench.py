"""`vqblur bench`: latency, compute per block, real-time factor, memory, energy and quality of a
bundle on this machine. numpy + onnxruntime only (never torch). See vqblur.measure (run.py) and
docs/MEASURING.md."""

from __future__ import annotations

import argparse
import sys

from vqblur.commands.argtypes import positive_float as _positive_float
from vqblur.engine import knobs as _knobs


def _int_list(s: str) -> list[int]:
    try:
        v = [int(p) for p in s.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not v or any(x < 1 for x in v):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return v


_SETS = {"real": "real", "gm": "gm_test", "gm_test": "gm_test"}


def _set_list(s: str) -> list[str]:
    names = [p.strip() for p in s.split(",") if p.strip()]
    bad = [n for n in names if n not in _SETS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected sets from real, gm; got {s!r}")
    return list(dict.fromkeys(_SETS[n] for n in names))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark a bundle: latency, jitter, RTF, per-block deadlines, memory, energy, quality",
        description=(
            "Measure what the effect costs and how it sounds on this machine: declared and measured "
            "latency (cross-correlation over random excitations) and its jitter; real-time factor per "
            "thread count (and per detail setting when the engine has that knob); per-host-block compute "
            "p50/p99/max against the block's duration and deadline misses under a simulated real-time "
            "schedule (64 and 128 over 30 s); microseconds per code column per part (STFT, encoder, blur, "
            "decoder, overlap-add, mix), inside onnxruntime and in Python; multiply-accumulates per column; "
            "peak RSS; energy per second of audio (RAPL when readable, else CPU time x watts per core, "
            "labelled 'estimated'); a DSP-only baseline; zone-0 quality (SC, LSD over 80 dB, level change, "
            "a 440 Hz sine) on the real-recording test set and the GM test split (rendered here when it is "
            "not on disk); Naive Bayes held-out scores; blur-strength curves; training cost from the "
            "manifest; the targets missed, with the targets beside the figures: a guarantee (latency, "
            "bundle size) is held by the tests on every machine, so a miss is a bug; a goal (compute, "
            "memory, codec quality) is an aim, and the compute goals depend on the machine. An int8 "
            "sibling bundle (DIR_int8, DIR-int8 or DIR/int8) is benchmarked side by side. "
            "docs/MEASURING.md has the definitions.\n\n"
            "Files: the GM test clips it renders when the split is not on disk go to "
            "~/.cache/vqblur/data/bench-eval ($VQBLUR_DATA/bench-eval when set; about 9 MB, reused "
            "by later runs; --no-render renders nothing); --json OUT writes the results."
        ),
        epilog=(
            "examples:\n"
            "  vqblur bench\n"
            "  vqblur bench --bundle presets/default_bundle,my_int8_bundle --json bench.json\n"
            "  vqblur bench --threads 1 --blocks 64,512 --seconds 30 --audio ~/music/stems\n"
            "  vqblur bench --sets real --seconds 5 --repeats 1    # real recordings only, short timing\n"
            "  vqblur bench --no-render                 # never render the GM test split (synthetic fallback)\n"
            "  vqblur bench --quick --json /tmp/b.json      # about a minute, for tests\n"
            "  vqblur bench --quick --zone-size 0.6 --scale 1   # timing runs at other knob values"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", metavar="DIR[,DIR]", default=None,
                   help="bundle folder(s), comma-separated (default: the shipped presets/default_bundle)")
    p.add_argument("--threads", type=_int_list, default=None, metavar="N,N",
                   help="onnxruntime intra-op thread counts for the RTF (default 1,2)")
    p.add_argument("--blocks", type=_int_list, default=None, metavar="B,B",
                   help="host block sizes in samples (default 32,64,128,256,512,1024)")
    p.add_argument("--seconds", type=_positive_float, default=None, metavar="S",
                   help="seconds of audio per timing run (default 10; --quick: 2)")
    p.add_argument("--audio", metavar="DIR", default=None,
                   help="also measure zone-0 quality on the audio files in DIR")
    p.add_argument("--sets", type=_set_list, default=None, metavar="SET,SET",
                   help="evaluation sets: real (the held-out sonic-pi recordings), gm (the GM test split); "
                        "default real,gm")
    p.add_argument("--clips", type=int, default=None, metavar="N",
                   help="GM test clips for quality and NB (default 16; --quick: 2)")
    p.add_argument("--real-clips", type=int, default=None, metavar="N",
                   help="real recordings for quality (default: all 39 of the test set; --quick: 2)")
    p.add_argument("--no-render", action="store_true",
                   help="do not render the GM test split when it is not on disk (quality falls back to "
                        "synthetic signals, labelled not comparable)")
    p.add_argument("--deadline-seconds", type=_positive_float, default=None, metavar="S",
                   help="seconds of audio for the deadline-miss count at blocks 64 and 128 (default 30; "
                        "--quick: 2)")
    p.add_argument("--json", metavar="OUT", default=None, help="write the full results as JSON")
    p.add_argument("--watts-per-core", type=_positive_float, default=None, metavar="W",
                   help="per-core power for the energy estimate when no counter is readable (default 10 W)")
    p.add_argument("--repeats", type=int, default=None, metavar="N", help="RTF repeats (median; default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed for excitations and the blur sampler")
    p.add_argument("--no-int8", action="store_true", help="do not look for an int8 sibling bundle")
    p.add_argument("--quick", action="store_true",
                   help="short runs everywhere (threads 1, blocks 64,512 (+128), 2 s, 2 clips per set): about a minute")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _knobs.add_knob_arguments(p, default_note="")  # the timing runs' knobs; the blur curve uses --detail too
    group = next(g for g in p._action_groups if g.title.startswith("knobs"))
    group.description = (  # said once, not under every flag
        "The knobs of the timing runs (RTF, per-column compute, deadline misses); default: zone "
        "size 0.3, temperature 0.5, centre 0.5, mix 1, detail 1, the knob's own default otherwise. "
        "Quality is measured at detail 1 and at detail 0 either way.")
    for action in group._group_actions:
        action.help = action.help.removesuffix(" ()")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import os
    from pathlib import Path

    from vqblur.measure.run import BenchOptions, run_bench, strip_for_json
    from vqblur.measure.table import format_table
    from vqblur.engine.bundle import default_bundle_path
    from vqblur.common.errors import UserError

    if args.bundle:
        bundles = [Path(b.strip()) for b in args.bundle.split(",") if b.strip()]
    else:
        bundles = [default_bundle_path()]
    for b in bundles:
        if not b.exists():
            raise UserError(f"{b}: bundle folder not found")
    if args.audio and not os.path.isdir(args.audio):
        raise UserError(f"{args.audio}: --audio must be a folder of audio files")
    if args.json:
        parent = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(parent):
            raise UserError(f"{args.json}: folder {parent} does not exist")
    if args.repeats is not None and args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    kw = {}
    if args.threads:
        kw["threads"] = args.threads
    elif args.quick:
        kw["threads"] = [1]
    if args.blocks:
        kw["blocks"] = args.blocks
    elif args.quick:
        kw["blocks"] = [64, 512]
    if args.seconds:
        kw["seconds"] = args.seconds
    if args.repeats:
        kw["repeats"] = args.repeats
    for name in ("clips", "real_clips"):
        v = getattr(args, name)
        if v is not None:
            if v < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
            kw[name] = v
    if args.sets:
        kw["sets"] = args.sets
    if args.deadline_seconds:
        kw["deadline_seconds"] = args.deadline_seconds
    log = (lambda s: None) if args.quiet else (lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    opts = BenchOptions(bundles=bundles, audio_dir=args.audio, watts_per_core=args.watts_per_core,
                        quick=args.quick, seed=args.seed, find_int8=not args.no_int8, render=not args.no_render,
                        timing_knobs=_knobs.given_knobs(args), log=log, **kw)
    res = strip_for_json(run_bench(opts))
    print(format_table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")
    return 0
