"""`vqblur report`: build report/REPORT.md with figures from a bench JSON (or a quick bench),
a training run's metrics.jsonl and the bundle itself. The builder is vqblur.measure.report
(measure/report.py), part of the installed package."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="build report/REPORT.md (figures: training curves, codebook, spectrograms, compute, latency, RTF)",
        description=(
            "Build a Markdown report with matplotlib figures: training curves (loss, perplexity, codes in "
            "use) from a run's metrics.jsonl; codebook usage and spectrograms/code grids of input, zone-0 "
            "and blurred output computed with the bundle; per-block compute against the deadline, latency "
            "histogram, RTF against block size, energy, quality and Naive Bayes tables from a bench JSON "
            "(`vqblur bench --json`), or from a quick bench run now. Also the listening page, "
            "listen.html: before/after audio (FLAC) of every shipped preset on a few held-out real "
            "recordings, each clip beside its spectrogram and the knob values (vqblur.measure.listen; "
            "--listen-only rebuilds just that page, about a minute)."
        ),
        epilog=(
            "examples:\n"
            "  vqblur bench --json bench.json && vqblur report --bench bench.json\n"
            "  vqblur report --run runs/default --out /tmp/myreport\n"
            "  vqblur report --listen-only           # report/listen.html and report/listen/ only"
        ),
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--bench", metavar="FILE", default=None,
                   help="a `vqblur bench --json` file (default: run a quick bench now)")
    p.add_argument("--run", metavar="DIR", default=None,
                   help="training run folder with metrics.jsonl (default: the checkout's training/default_run; "
                        "an installed package has none)")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="bundle for the codebook/spectrogram figures and the bench (default: the bench's "
                        "first bundle, else the shipped default bundle)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: the checkout's report/, or ./report from an installed package)")
    p.add_argument("--clips", type=int, default=8, metavar="N", help="test clips for the codebook histogram (default 8)")
    p.add_argument("--full-bench", action="store_true", help="without --bench: run the full bench, not the quick one")
    p.add_argument("--listen-only", action="store_true",
                   help="write only the listening page (OUT/listen.html and OUT/listen/), not REPORT.md")
    p.add_argument("--no-listen", action="store_true", help="do not write the listening page")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (each step as it runs); only the final "
                        "'wrote PATH' line on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from vqblur.common.errors import UserError

    if args.bench and not os.path.isfile(args.bench):
        raise UserError(f"{args.bench}: bench JSON not found")
    if args.run and not os.path.exists(args.run):
        raise UserError(f"{args.run}: run folder not found")
    if args.clips < 1:
        raise UserError("--clips must be at least 1")
    if args.listen_only and args.no_listen:
        raise UserError("--listen-only and --no-listen exclude each other")
    from vqblur.measure.report import build_report, default_out_dir
    log = (lambda s: None) if args.quiet else (lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    if args.listen_only:
        print(f"wrote {_listen_page(args, default_out_dir, log)}")
        return 0
    try:
        path = build_report(args.out, bench_path=args.bench, run_dir=args.run, bundle=args.bundle,
                            clips=args.clips, quick_bench=not args.full_bench, log=log)
    except (KeyError, ValueError) as exc:
        if args.bench:
            raise UserError(f"{args.bench}: not a usable `vqblur bench --json` file ({exc!r})") from None
        raise
    print(f"wrote {path}")
    if not args.no_listen:
        try:
            print(f"wrote {_listen_page(args, default_out_dir, log)}")
        except UserError as exc:  # e.g. no real recordings on this machine: the report stands
            print(f"vqblur report: listening page not written: {exc}", file=sys.stderr)
    return 0


def _listen_page(args, default_out_dir, log):
    from pathlib import Path

    from vqblur.measure.listen import build_listen_page

    out = Path(args.out) if args.out else default_out_dir()
    return build_listen_page(out, bundle=args.bundle, log=log)
