"""`vqblur process`: render an audio file through the streaming engine, block by block.

The same :class:`vqblur.engine.core.Engine` as `vqblur live` (wrapped in the resampler when the
file's rate differs from the bundle's), fed in host-sized blocks, with knob automation read
once per block. The output keeps the input's sample rate, channel count and length: the
engine's declared latency is compensated (the first D output samples are dropped and D zeros
are fed at the end). The subtype (bit depth) is kept when the output format supports it.
"""

from __future__ import annotations

import argparse
import sys


def _unit(name):
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in 0..1, got {s!r}") from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in 0..1, got {v}")
        return v

    return conv


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "process",
        help="render an audio file through the streaming engine (offline, same path as live)",
        description=(
            "Render IN through the streaming engine into OUT, block by block, exactly as "
            "`vqblur live` would process it. Any sample rate (resampled to the model's and "
            "back) and any number of channels (each channel its own stream). OUT keeps IN's "
            "rate, channels and length (latency compensated). Knob values: the preset, then "
            "the --zone-size/--temperature/--centre/--mix options, then --automation."
        ),
        epilog=(
            "examples:\n"
            "  vqblur process in.wav out.wav --preset smear\n"
            "  vqblur process in.flac out.wav --zone-size 0.4 --temperature 0.6 --seed 7\n"
            "  vqblur process in.wav out.wav --automation knobs.json\n"
            '     knobs.json: [{"time": 0, "zone_size": 0}, {"time": 4, "zone_size": 0.8}]\n'
            "  vqblur process in.wav out.wav --automation moves.mid   # CC1 zone, CC74 temperature,\n"
            "                                                          # CC71 centre, CC91 mix, CC80 bypass"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="input audio file (wav, flac, ogg, ...)")
    p.add_argument("output", metavar="OUT", help="output audio file (format from the extension)")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="model bundle folder (default: the shipped presets/default_bundle)")
    p.add_argument("--preset", metavar="NAME|PATH", default=None,
                   help="effect preset: a name in presets/effects/ or a .toml path")
    p.add_argument("--zone-size", type=_unit("--zone-size"), default=None, metavar="S",
                   help="zone size 0..1 (half-height S*rows; 0 = no blur)")
    p.add_argument("--temperature", type=_unit("--temperature"), default=None, metavar="T",
                   help="temperature knob 0..1 (T = 2 t^2; 0 = most probable code)")
    p.add_argument("--centre", type=_unit("--centre"), default=None, metavar="C",
                   help="zone centre 0..1 (0 = lowest band)")
    p.add_argument("--mix", type=_unit("--mix"), default=None, metavar="M",
                   help="dry/wet 0..1 (1 = fully wet)")
    p.add_argument("--automation", metavar="FILE", default=None,
                   help="knob automation: a .json breakpoint list or a .mid file's CCs")
    p.add_argument("--seed", type=int, default=0, help="blur sampler seed (default 0)")
    p.add_argument("--block", type=_positive_int, default=512, metavar="N",
                   help="host block size in samples (default 512); the output does not depend on it")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def _output_subtype(sf, out_path: str, in_subtype: str) -> tuple[str, str]:
    import os

    ext = os.path.splitext(out_path)[1].lower().lstrip(".")
    fmts = {k.lower(): k for k in sf.available_formats()}
    aliases = {"aif": "aiff", "oga": "ogg", "opus": "ogg"}
    fmt = fmts.get(aliases.get(ext, ext))
    if fmt is None:
        from vqblur.errors import UserError

        raise UserError(f"{out_path}: unknown output format '.{ext}' (try .wav or .flac)")
    if ext == "opus":
        return fmt, "OPUS"
    if in_subtype and sf.check_format(fmt, in_subtype):
        return fmt, in_subtype
    return fmt, sf.default_subtype(fmt)


def run(args) -> int:
    import os
    import time

    import numpy as np
    import soundfile as sf
    from tqdm import tqdm

    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine
    from vqblur.errors import UserError

    if not os.path.isfile(args.input):
        raise UserError(f"{args.input}: input file not found")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise UserError(f"{args.output}: output would overwrite the input")
    try:
        info = sf.info(args.input)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UserError(f"{args.input}: cannot read audio ({exc})") from None
    sr, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)

    params = Params()
    preset_name = None
    if args.preset:
        from vqblur.engine.presets import load_preset

        preset = load_preset(args.preset)
        params, preset_name = preset.params, preset.name
    overrides = {k: v for k, v in (("zone_size", args.zone_size), ("temperature", args.temperature),
                                   ("centre", args.centre), ("mix", args.mix)) if v is not None}
    params = params.replace(**overrides)
    automation = None
    if args.automation:
        from vqblur.engine.automation import load_automation

        automation = load_automation(args.automation)
        params = params.replace(**automation.values_at(0.0))  # start there, no ramp from elsewhere

    bundle = load_bundle(args.bundle if args.bundle else default_bundle_path())
    eng = make_engine(bundle, sample_rate=sr, params=params, channels=channels, seed=args.seed,
                      threads=args.threads)
    L = eng.latency_samples
    fmt, subtype = _output_subtype(sf, args.output, info.subtype)

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"vqblur process: {args.input} -> {args.output} ({sr} Hz, {channels} ch, "
        f"{frames / sr:.2f} s, {subtype})")
    resampled = f", resampled {sr} <-> {bundle.sample_rate} Hz" if sr != bundle.sample_rate else ""
    say(f"  bundle {bundle.root}  preset {preset_name or '-'}  blur "
        f"{'on' if eng.blur_available else 'unavailable (no sampler)'}")
    say(f"  latency {L} samples = {1000 * L / sr:.2f} ms{resampled} (compensated)")
    p = eng.params
    say(f"  knobs zone_size {p.zone_size:g}  temperature {p.temperature:g}  centre {p.centre:g}  "
        f"mix {p.mix:g}" + (f"  automation {', '.join(automation.knobs)}" if automation else ""))

    B = int(args.block)
    to_drop = L
    written = 0
    fed = 0
    t_start = time.perf_counter()
    t_engine = 0.0
    bar = tqdm(total=frames, unit="sample", unit_scale=True, disable=args.quiet,
               desc="process", file=sys.stderr, leave=False)

    def feed(x, fout):
        nonlocal to_drop, written, fed, t_engine
        if automation is not None:
            eng.set_params(**automation.values_at(fed / sr))
        t0 = time.perf_counter()
        y = eng.process(x)
        t_engine += time.perf_counter() - t0
        fed += len(x)
        if to_drop:
            d = min(to_drop, len(y))
            y = y[d:]
            to_drop -= d
        y = y[: frames - written]
        if len(y):
            fout.write(y)
            written += len(y)

    try:
        with sf.SoundFile(args.input) as fin, sf.SoundFile(
            args.output, "w", samplerate=sr, channels=channels, format=fmt, subtype=subtype
        ) as fout:
            for blk in fin.blocks(blocksize=B, dtype="float32", always_2d=True):
                feed(blk, fout)
                bar.update(len(blk))
            zeros = np.zeros((B, channels), np.float32)
            while written < frames:  # flush the latency with silence
                feed(zeros[: min(B, frames - written + to_drop)], fout)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UserError(f"cannot process {args.input} -> {args.output}: {exc}") from None
    finally:
        bar.close()
    wall = time.perf_counter() - t_start
    dur = max(frames / sr, 1e-9)
    say(f"  wrote {written} samples ({written / sr:.2f} s); real-time factor {wall / dur:.3f} "
        f"(engine {t_engine / dur:.3f}; {1000 * t_engine / dur:.1f} ms per second of audio)")
    return 0
