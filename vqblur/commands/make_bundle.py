"""`vqblur make-bundle FOLDER --out DIR`: a model bundle from a folder of your own audio."""

from __future__ import annotations

import argparse

from vqblur.commands.argtypes import positive_float as _positive_float, positive_int as _positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-bundle",
        help="make a model bundle from a folder of your own audio (fine-tune, NB tables, export)",
        description=(
            "Read FOLDER (recursively; wav, flac, ogg, aiff, mp3, ... at any rate and channel count, "
            "read as mono at the model's rate), hold out whole files for the card (fixed by name), "
            "fine-tune the shipped default model on the rest (or --from-scratch), until validation "
            "(the mel-LSD + level error on the last 10 % of each training file) stops improving or "
            "--minutes is spent, fit both Naive Bayes tables on the folder's codes, "
            "export and check the bundle, measure it against the shipped model on the held-out files "
            "and print its card. Resumable: after Ctrl-C or a kill, run the same command again and it "
            "continues from the last checkpoint in the work folder (DIR.work). --palette-only keeps "
            "the shipped codec and refits only the blur's tables, in minutes. Under torchrun it trains "
            "on every process (DistributedDataParallel), as `vqblur train` does; it uses a GPU when "
            "torch sees one. docs/OWN_SOUNDS.md says how much audio is enough."
        ),
        epilog=(
            "examples:\n"
            "  vqblur make-bundle ~/music/mine --out ~/bundles/mine              # fine-tune, up to 20 min\n"
            "  vqblur make-bundle ~/music/mine --out ~/bundles/mine --minutes 10\n"
            "  vqblur make-bundle ~/music/mine --out ~/bundles/palette --palette-only   # a few minutes\n"
            "  vqblur make-bundle ~/music/mine --out ~/bundles/scratch --from-scratch --minutes 120\n"
            "  torchrun --nproc-per-node 4 -m vqblur make-bundle ~/music/mine --out ~/bundles/mine\n"
            "then:\n"
            "  vqblur live --bundle ~/bundles/mine\n"
            "  vqblur process in.wav out.wav --bundle ~/bundles/mine\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="FOLDER", help="folder of audio files (searched recursively)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="bundle folder to write (new, empty, or a bundle to replace)")
    p.add_argument("--minutes", type=_positive_float, default=None, metavar="N",
                   help="training budget in minutes of wall time (default: fine-tuning twice the "
                        "folder's minutes, 5 to 20; --from-scratch 120); the stopping rule may end sooner")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--from-scratch", action="store_true",
                      help="train a new model with the shipped model's config instead of fine-tuning it")
    mode.add_argument("--palette-only", action="store_true",
                      help="keep the shipped codec; refit only the Naive Bayes tables on the folder's codes")
    p.add_argument("--work", metavar="DIR", default=None,
                   help="work folder for the staged audio and the checkpoints (default: DIR.work beside --out)")
    p.add_argument("--restart", action="store_true",
                   help="discard the work folder's run and start over (a rerun otherwise resumes it)")
    p.add_argument("--eval-every", type=_positive_int, default=100, metavar="STEPS",
                   help="validation and checkpoint interval in training steps (default 100)")
    p.add_argument("--patience", type=_positive_int, default=5, metavar="N",
                   help="stop when validation has not improved for N evaluations (default 5)")
    p.add_argument("--base-checkpoint", metavar="CKPT", default=None,
                   help="the model to fine-tune (default: the shipped training/default_run/model.pt); "
                        "its config is the config of --from-scratch too")
    p.add_argument("--base-bundle", metavar="DIR", default=None,
                   help="the bundle compared against and, with --palette-only, the codec kept "
                        "(default: the shipped presets/default_bundle)")
    p.add_argument("--watts-per-core", type=_positive_float, default=None, metavar="W",
                   help="CPU power figure for the energy estimate (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from vqblur.make_bundle import Options, make_bundle

    opts = Options(
        folder=Path(args.folder).expanduser(), out=Path(args.out).expanduser(),
        work=Path(args.work).expanduser().absolute() if args.work else None,
        minutes=args.minutes, from_scratch=args.from_scratch, palette_only=args.palette_only,
        restart=args.restart,
        base_checkpoint=Path(args.base_checkpoint).expanduser() if args.base_checkpoint else None,
        base_bundle=Path(args.base_bundle).expanduser() if args.base_bundle else None,
        eval_every=args.eval_every, patience=args.patience, progress=not args.quiet,
        watts_per_core=args.watts_per_core,
    )
    try:
        return make_bundle(opts)
    except KeyboardInterrupt:
        if not opts.palette_only:
            print("\nvqblur make-bundle: interrupted; run the same command again to continue from the "
                  "last checkpoint", file=sys.stderr)
        else:
            print("\nvqblur make-bundle: interrupted; nothing was written", file=sys.stderr)
        return 130
