"""`vqblur process`: render an audio file through the streaming engine, block by block.

The same :class:`vqblur.engine.core.Engine` as `vqblur live` (wrapped in the resampler when the
file's rate differs from the bundle's), fed in host-sized blocks, with knob automation read
once per block. The output keeps the input's sample rate, channel count and length (plus
``--tail`` seconds of what the engine still rings with after the input ends, fed silence): the
engine's declared latency is compensated (the first D output samples are dropped and D zeros
are fed at the end). The subtype (bit depth) is kept when the output format supports it.
"""

from __future__ import annotations

import argparse
import sys

from vqblur.commands.argtypes import nonneg_int as _seed, positive_int as _positive_int
from vqblur.engine import knobs as _knobs


MAX_BLOCK = 1 << 20  # host block cap: the reader and the flush buffer are this big


def _block_size(s: str) -> int:
    return _positive_int(s, MAX_BLOCK)


def _threads(s: str) -> int:
    return _positive_int(s, 256)


MAX_TAIL_S = 600.0


def _tail_seconds(s: str) -> float:
    """--tail: seconds >= 0, at most MAX_TAIL_S."""
    import argparse

    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {s!r}") from None
    if not 0.0 <= v <= MAX_TAIL_S:  # NaN too
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to {MAX_TAIL_S:g}, got {s!r}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "process",
        help="render an audio file through the streaming engine (offline, same path as live)",
        description=(
            "Render IN through the streaming engine into OUT, block by block, exactly as "
            "`vqblur live` would process it. Any sample rate (resampled to the model's and "
            "back) and any number of channels (linked by default: one analysis and one blur, the "
            "same change on every channel, so the stereo image holds; --stereo independent: each "
            "channel its own stream). OUT keeps IN's "
            "rate, channels and length (latency compensated; --tail adds the ring-out after the "
            "input's end). Knob values: the preset, then "
            "the knob options (--zone-size, --detail, ...), then --automation."
        ),
        epilog=(
            "examples:\n"
            "  vqblur process in.wav out.wav --preset smear\n"
            "  vqblur process hit.wav out.wav --smear 1 --zone-size 0.3 --tail 1   # keep the smear's tail\n"
            "  vqblur process in.flac out.wav --zone-size 0.4 --temperature 0.6 --seed 7\n"
            "  vqblur process in.wav out.wav --automation knobs.json\n"
            '     knobs.json: [{"time": 0, "zone_size": 0}, {"time": 4, "zone_size": 0.8}]\n'
            "  vqblur process in.wav out.wav --preset codec           # the codec (detail 0)\n"
            "  vqblur process in.wav out.wav --automation moves.mid   # CCs: "
            + ", ".join(f"{k.cc} {k.name}" for k in _knobs.ALL) + "\n"
            "  vqblur process in.wav out.wav --preset smear --png grid.png   # + the codemap before/after"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="input audio file (wav, flac, ogg, ...)")
    p.add_argument("output", metavar="OUT", help="output audio file (format from the extension)")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="model bundle folder (default: the shipped presets/default_bundle)")
    p.add_argument("--preset", metavar="NAME|PATH", default=None,
                   help="effect preset: a name in presets/effects/ or a .toml path")
    _knobs.add_knob_arguments(p)
    p.add_argument("--automation", metavar="FILE", default=None,
                   help="knob automation: a .json breakpoint list or a .mid file's CCs")
    p.add_argument("--seed", type=_seed, default=0, help="blur sampler seed (default 0)")
    p.add_argument("--block", type=_block_size, default=512, metavar="N",
                   help="host block size in samples (default 512); the output does not depend on it")
    p.add_argument("--threads", type=_threads, default=1,
                   help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--stereo", choices=("linked", "independent"), default="linked",
                   help="with more than one channel: linked (default: one blur for all, the image "
                        "holds, about the cost of mono) or independent (a blur each: wide, decorrelated)")
    p.add_argument("--png", metavar="FILE", default=None,
                   help="also draw the codemap before and after the blur for the whole file (first "
                        "channel), with the zone as the knobs moved it, to this PNG")
    p.add_argument("--tail", type=_tail_seconds, default=0.0, metavar="SECONDS",
                   help="also write this much of what the engine rings with after IN ends (fed "
                        "silence), as a reverb renders its tail: the smear knob's tail of a "
                        "one-shot falls about 30 dB a second (default 0: OUT is IN's length)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


#: sample rates `process` accepts (the resampler's filters grow as 1/rate below the model's)
MIN_RATE, MAX_RATE = 1000, 768000


def _output_subtype(sf, out_path: str, in_subtype: str) -> tuple[str, str]:
    import os

    from vqblur.common.errors import UserError

    ext = os.path.splitext(out_path)[1].lower().lstrip(".")
    if not ext and os.path.exists(out_path) and not os.path.isfile(out_path):
        ext = "wav"  # /dev/null, a FIFO: WAV
    if not ext:
        raise UserError(f"{out_path}: output file has no extension; the format comes from it "
                        "(try .wav or .flac)")
    fmts = {k.lower(): k for k in sf.available_formats()}
    aliases = {"aif": "aiff", "oga": "ogg", "opus": "ogg"}
    fmt = fmts.get(aliases.get(ext, ext))
    if fmt is None:
        raise UserError(f"{out_path}: unknown output format '.{ext}' (try .wav or .flac)")
    if ext == "opus":
        return fmt, "OPUS"
    if in_subtype and sf.check_format(fmt, in_subtype):
        return fmt, in_subtype
    return fmt, sf.default_subtype(fmt)


def blur_state(available: bool, zone_size: float, automation=None) -> str:
    """The summary's word on the blur: "blur off (zone size 0: ...)" when nothing is resampled,
    "blur on (zone size 0.25)", "blur automated (...)" when the automation moves the zone."""
    if not available:
        return "blur unavailable (no sampler in the bundle)"
    curve = automation.curves.get("zone_size") if automation is not None else None
    if curve is not None and len(curve[1]) and float(max(curve[1])) > 0.0:
        lo, hi = float(min(curve[1])), float(max(curve[1]))
        return f"blur automated (zone size {lo:g}..{hi:g})"
    if zone_size > 0.0:
        return f"blur on (zone size {zone_size:g})"
    return "blur off (zone size 0: no code is resampled; --zone-size or --preset opens the zone)"


def _check_paths(inp: str, out: str) -> None:
    """Clear UserErrors for the input/output paths before any work is done."""
    import os

    from vqblur.common.errors import UserError

    if os.path.isdir(inp):
        raise UserError(f"{inp}: is a folder, not an audio file")
    if not os.path.exists(inp):
        raise UserError(f"{inp}: input file not found")
    if not os.path.isfile(inp):
        raise UserError(f"{inp}: not a regular file")
    if not os.access(inp, os.R_OK):
        raise UserError(f"{inp}: cannot read the input file (permission denied)")
    if os.path.abspath(inp) == os.path.abspath(out) or (
        os.path.exists(out) and os.path.samefile(inp, out)
    ):
        raise UserError(f"{out}: output would overwrite the input")
    if os.path.isdir(out):
        raise UserError(f"{out}: is a folder; give an output file name (e.g. {os.path.join(out, 'out.wav')})")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise UserError(f"{out}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{out}: cannot write into {folder} (permission denied)")


def run(args) -> int:
    import os
    import signal
    import tempfile
    import threading
    import time

    import numpy as np
    import soundfile as sf
    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine
    from vqblur.common.errors import UserError
    from vqblur.common.progress import progress_bar
    from vqblur.latency import describe_latency

    _check_paths(args.input, args.output)
    if args.png:
        png_dir = os.path.dirname(os.path.abspath(args.png))
        if os.path.isdir(args.png) or not os.path.isdir(png_dir):
            raise UserError(f"{args.png}: cannot write the picture there (a folder, or its folder "
                            "does not exist)")
    try:
        info = sf.info(args.input)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UserError(f"{args.input}: cannot read audio ({exc})") from None
    sr, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise UserError(f"{args.input}: sample rate {sr} Hz is outside the supported range "
                        f"{MIN_RATE}..{MAX_RATE} Hz")
    if channels < 1:
        raise UserError(f"{args.input}: no audio channels")
    if frames <= 0:
        raise UserError(f"{args.input}: no audio samples in this file (empty or damaged)")
    fmt, subtype = _output_subtype(sf, args.output, info.subtype)

    params = Params()
    preset_name = None
    if args.preset:
        from vqblur.engine.presets import load_preset

        preset = load_preset(args.preset)
        params, preset_name = preset.params, preset.name
    params = params.replace(**_knobs.given_knobs(args))
    automation = None
    if args.automation:
        from vqblur.engine.automation import load_automation

        automation = load_automation(args.automation)
        params = params.replace(**automation.values_at(0.0))  # start there, no ramp from elsewhere

    bundle = load_bundle(args.bundle if args.bundle else default_bundle_path())
    eng = make_engine(bundle, sample_rate=sr, params=params, channels=channels, seed=args.seed,
                      threads=args.threads, stereo=args.stereo)
    L = eng.latency_samples
    palette = None
    if args.preset and preset.palette is not None:  # the preset names a palette: its tables
        from vqblur.common.errors import BundleError

        try:
            palette = getattr(eng, "engine", eng).load_palette(preset.palette)
        except BundleError as exc:
            raise UserError(f"preset {preset_name}: palette {preset.palette}: {exc}") from None
    tail = int(round(args.tail * sr))  # samples written after IN's end
    tap = _attach_tap(eng, frames + tail, sr) if args.png else None

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"vqblur process: {args.input} -> {args.output} ({sr} Hz, {channels} ch"
        + (f", {args.stereo}" if channels > 1 else "") + ", "
        f"{frames / sr:.2f} s, {subtype})")
    say(f"  bundle {bundle.root}  preset {preset_name or '-'}  "
        + (f"palette {palette}  " if palette else "")
        + blur_state(eng.blur_available, eng.params.zone_size, automation))
    say(f"  latency {describe_latency(eng)}; compensated (OUT is aligned with IN)")
    p = eng.params
    say("  knobs " + "  ".join(f"{k} {v:g}" for k, v in p.as_dict().items())
        + (f"  automation {', '.join(automation.knobs)}" if automation else ""))
    smeared = p.smear > 0.0 or (automation is not None and "smear" in automation.knobs)
    if smeared and not tail and eng.blur_available:
        say("  note: OUT ends where IN does; the smear's tail after the last sound is cut "
            "(--tail 1 keeps about a second of it)")

    B = int(args.block)
    to_drop = L
    written = 0
    fed = 0
    n_read = 0  # input samples actually decoded (the header's count is not trusted)
    t_start = time.perf_counter()
    t_engine = 0.0
    bar = progress_bar(frames, desc="process", unit="sample", unit_scale=True, quiet=args.quiet)

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
        y = y[: n_read + tail - written]
        if len(y):
            fout.write(y)
            written += len(y)

    # Render into a hidden temporary file next to OUT and move it into place only when the
    # whole file is done: a failure (damaged input, full disk, Ctrl-C) leaves no half-written
    # OUT and does not destroy an existing one.
    # A device or pipe (/dev/null, a FIFO) is written directly: renaming over it would
    # replace the device node with a regular file.
    special = os.path.exists(args.output) and not os.path.isfile(args.output)
    target = os.path.realpath(args.output)  # through a symlink: replace the file it points to
    if special:
        tmp = args.output
    else:
        out_dir = os.path.dirname(target)
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".",
                                       suffix=".partial", dir=out_dir)
        except OSError as exc:
            raise UserError(f"{args.output}: cannot create a file in {out_dir} ({exc.strerror})") from None
        os.close(fd)
    done = False
    fout = None
    stage = "open"
    # SIGTERM (a batch scheduler, `kill`) unwinds like Ctrl-C so the temporary file is removed
    old_term = None
    if threading.current_thread() is threading.main_thread():
        def _on_term(signum, frame):
            raise SystemExit(128 + signum)

        old_term = signal.signal(signal.SIGTERM, _on_term)
    try:
        try:
            stage = "read"
            with sf.SoundFile(args.input) as fin:
                stage = "open"
                fout = sf.SoundFile(tmp, "w", samplerate=sr, channels=channels, format=fmt,
                                    subtype=subtype)
                blocks = fin.blocks(blocksize=B, dtype="float32", always_2d=True)
                while True:
                    stage = "read"
                    blk = next(blocks, None)
                    if blk is None:
                        break
                    n_read += len(blk)
                    stage = "write"
                    feed(blk, fout)
                    bar.update(len(blk))
                if n_read == 0:
                    raise UserError(f"{args.input}: no audio samples could be decoded (damaged file)")
                zeros = np.zeros((B, channels), np.float32)
                stage = "write"
                while written < n_read + tail:  # flush the latency (and the tail) with silence
                    feed(zeros[: min(B, n_read + tail - written + to_drop)], fout)
                fout.close()
            if not special:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it 0600; give OUT the usual mode
                os.replace(tmp, target)
            done = True
        except (RuntimeError, sf.LibsndfileError) as exc:
            exc = str(exc).replace(tmp, args.output)  # name OUT, not its temporary file
            if stage == "read":
                raise UserError(f"{args.input}: damaged or truncated audio, decoding failed after "
                                f"{n_read} of {frames} samples ({exc}); nothing written") from None
            if stage == "open":
                raise UserError(f"{args.output}: cannot write a {fmt}/{subtype} file with "
                                f"{channels} channels at {sr} Hz ({exc})") from None
            raise UserError(f"cannot process {args.input} -> {args.output}: {exc}") from None
        except OSError as exc:
            raise UserError(f"cannot process {args.input} -> {args.output}: {exc}") from None
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        bar.close()
        if fout is not None and not fout.closed:
            fout.close()
        if not done and not special:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    wall = time.perf_counter() - t_start
    dur = max(written / sr, 1e-9)  # the audio the engine rendered (IN, and the tail)
    say(f"  wrote {written} samples ({written / sr:.2f} s); real-time factor {wall / dur:.3f} "
        f"(engine {t_engine / dur:.3f}; {1000 * t_engine / dur:.1f} ms per second of audio)")
    if tap is not None:
        changed = _draw_codemap(args, eng, tap, n_read, sr, preset_name, automation)
        say(f"  codemap picture -> {args.png} ({changed} codes changed by the blur, channel 1)")
    return 0


def _attach_tap(eng, frames: int, sr: int):
    """A ColumnTap big enough for every code column of the file, hooked into the Engine."""
    import math

    from vqblur.engine.stage.tap import ColumnTap

    inner = getattr(eng, "engine", eng)  # the Engine inside a ResampledEngine
    cfg = inner.config
    n_model = frames * inner.sample_rate / sr + eng.latency_samples * inner.sample_rate / sr
    cols = int(math.ceil((n_model + 2 * cfg.n_fft + 4096) / cfg.column_samples)) + 16
    tap = ColumnTap(cfg.rows, capacity=cols)
    inner.tap = tap
    return tap


def _draw_codemap(args, eng, tap, n_read: int, sr: int, preset_name, automation) -> int:
    """The codemap before/after of the file's columns, drawn by `vqblur blur`'s plotter."""
    import math
    import os

    import numpy as np

    from vqblur.commands.blur import draw_png

    inner = getattr(eng, "engine", eng)
    cfg = inner.config
    before, after, zone, centre = tap.history()
    n_cols = min(before.shape[1], max(1, int(math.ceil(n_read * inner.sample_rate / sr / cfg.column_samples))))
    before, after, zone, centre = before[:, :n_cols], after[:, :n_cols], zone[:n_cols], centre[:n_cols]
    from vqblur.common.freqaxis import row_edges_hz
    from vqblur.engine.blur.zone import PerceptualZone

    bnd = inner.bundle
    edges = bnd.row_edges_hz() if bnd is not None else row_edges_hz(cfg.rows, cfg.sample_rate, cfg.n_fft,
                                                                      cfg.model_bins)
    pz = PerceptualZone(cfg.sample_rate, cfg.n_fft, cfg.model_bins, edges, bin_freqs=cfg.model_bin_hz())
    prob = np.zeros((cfg.rows, n_cols))  # each row's zone weight (its strongest bin), column by column
    for c in range(n_cols):
        pz.update(float(zone[c]), float(centre[c]))
        prob[:, c] = pz.row_weights()
    p = eng.params
    title = (f"{os.path.basename(args.input)} through the streaming engine: "
             + (f"preset {preset_name}, " if preset_name else "")
             + ("knob automation, " if automation is not None else
                f"zone size {p.zone_size:g}, centre {p.centre:g}, temperature {p.temperature:g}, ")
             + f"seed {args.seed}")
    draw_png(args.png, before, after, prob, cfg.column_samples / inner.sample_rate, title, edges)
    return int((before != after).sum())
