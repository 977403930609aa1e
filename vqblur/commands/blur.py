"""`vqblur blur`: the offline blur of a zone (time x frequency) of a sound file.

Pipeline (each channel on its own; the file is resampled to the bundle's rate and back when
the rates differ). Both passes are the streaming engine's own column loop
(:class:`vqblur.engine.core.Engine`), so the blur's rules are the same as live:

1. ``Engine.encode_codes``: the bundle's encoder, column by column, over the whole file;
2. ``vqblur.engine.blur.blur_grid``: Gibbs sweeps with the full neighbourhood (past and
   future columns) over the zone -- the rows under the zone on the perceptual frequency axis
   (``zone_size``/``centre`` as in ``vqblur process``) and the columns of ``--time``, with a soft
   edge in time; cells outside the zone keep their code; resampled cells drop their finer
   micro levels, as live;
3. ``Engine.render`` with the blurred grid played back in place of the streaming sampler
   (:class:`vqblur.engine.blur.playback.PlaybackBlur`): two decoder streams, the blur v2
   shaping of the change (zone weight, smoothing, level match), the input's own phase, the
   safety limiter; latency compensated (same rate, channels and length as the input). At
   ``--zone-size 0`` the output equals ``vqblur process --zone-size 0`` at mix 1.

Column c of the codemap holds input samples ``[160c - 240, 160c + 159]`` at 48 kHz (frames
2c and 2c+1); ``--time A:B`` takes the columns ``round(A * rate / 160)`` up to
``round(B * rate / 160)`` (exclusive).
"""

from __future__ import annotations

import argparse
import sys

from vqblur.commands.argtypes import nonneg_int as _nonneg_int
from vqblur.engine import knobs as _knobs


def parse_time_span(s: str | None) -> tuple[float | None, float | None]:
    """'A:B' seconds (either side may be empty) -> (A, B); None -> (None, None)."""
    if s is None:
        return None, None
    if ":" not in s:
        raise argparse.ArgumentTypeError(f"--time must be START:END in seconds, got {s!r}")
    a, b = s.split(":", 1)
    try:
        start = float(a) if a.strip() else None
        end = float(b) if b.strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--time must be START:END in seconds, got {s!r}") from None
    if start is not None and start < 0:
        raise argparse.ArgumentTypeError(f"--time start must be >= 0, got {start}")
    if start is not None and end is not None and end <= start:
        raise argparse.ArgumentTypeError(f"--time end must be after its start, got {s!r}")
    return start, end


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "blur",
        help="blur a time x frequency zone of a sound file (offline, full neighbourhood)",
        description=(
            "Encode IN with the bundle's encoder, resample the codes of a zone (a time span x a "
            "band of rows, soft-edged) from the Naive Bayes model of their neighbours -- past "
            "and future ones, by Gibbs sweeps -- decode, resynthesise with IN's phase and write "
            "OUT (same rate, channels and length). --detail (default 1) keeps the input's own "
            "detail: outside the zone OUT is IN; at --detail 0 OUT is what the codec "
            "reconstructs. The engine's safety limiter is applied, as in `vqblur process`."
        ),
        epilog=(
            "examples:\n"
            "  vqblur blur in.wav out.wav --time 1.0:2.5 --zone-size 0.3 --centre 0.2 --temperature 0.6\n"
            "  vqblur blur in.wav out.wav --zone-size 1 --temperature 0.8 --sweeps 8 --png zone.png\n"
            "  vqblur blur in.wav out.wav --time 2: --zone-size 0.2 --centre 0.8 --seed 3\n"
            "  vqblur blur in.wav out.wav --zone-size 0.3 --detail 0      # the codec's own colour\n"
            "knobs are 0..1, as in `vqblur process`: zone size and centre on the perceptual\n"
            "frequency axis (centre 0.45 ~ 1.7 kHz), T = 4*t^2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN", help="input audio file (wav, flac, ogg, ...)")
    p.add_argument("output", metavar="OUT", help="output audio file (format from the extension)")
    p.add_argument("--time", default=None, metavar="START:END",
                   help="time span in seconds (either side may be empty; default: the whole file)")
    # the codec knobs (per code column) of the declaration; zone size defaults to 0.25 here
    _knobs.add_knob_arguments(p, _knobs.COLUMN,
                              defaults={**{k.name: k.default for k in _knobs.COLUMN}, "zone_size": 0.25})
    p.add_argument("--sweeps", type=_nonneg_int, default=4, metavar="N",
                   help="Gibbs sweeps over the zone (default 4)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="model bundle folder (default: the shipped presets/default_bundle)")
    p.add_argument("--neighbourhood", "--neighborhood", default="full", metavar="full|causal|LIST",
                   help="neighbour offsets used (default full: all of the table's)")
    p.add_argument("--png", metavar="FILE", default=None,
                   help="also draw the codemap before and after, with the zone, to this PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------- pipeline


def time_span_to_columns(start, end, sample_rate: int, column_samples: int, n_columns: int):
    """Seconds -> (first column, end column exclusive), clipped to the codemap."""
    a = 0 if start is None else int(round(start * sample_rate / column_samples))
    b = n_columns if end is None else int(round(end * sample_rate / column_samples))
    return max(0, min(a, n_columns)), max(0, min(b, n_columns))


def _hz_label(f: float) -> str:
    return f"{f / 1000:.1f}k" if f >= 1000 else f"{f:.0f}"


def row_axis_labels(ax, edges_hz) -> None:
    """Label a code grid's rows by the frequencies they hold (``edges_hz [rows + 1]``)."""
    import numpy as np

    rows = len(edges_hz) - 1
    ticks = np.arange(0, rows, max(1, rows // 8))
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{_hz_label(edges_hz[r])}-{_hz_label(edges_hz[r + 1])}" for r in ticks], fontsize=7)
    ax.set_ylabel("row (Hz)")


def draw_png(path, before, after, prob, seconds_per_column: float, title: str, edges_hz=None) -> None:
    """Codemap before / after / changed cells, with the zone's outline; rows labelled in Hz when
    ``edges_hz`` (the grid's row edges, ``[rows + 1]``) is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols = before.shape
    extent = (0.0, cols * seconds_per_column, -0.5, rows - 0.5)
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True, constrained_layout=True)
    K = max(int(before.max()), int(after.max())) + 1
    for ax, grid, name in ((axes[0], before, "codemap before"), (axes[1], after, "after")):
        im = ax.imshow(grid, origin="lower", aspect="auto", interpolation="nearest",
                       extent=extent, cmap="nipy_spectral", vmin=0, vmax=max(K - 1, 1))
        ax.set_ylabel("row (band)")
        ax.set_title(name)
    changed = (before != after).astype(float)
    axes[2].imshow(changed, origin="lower", aspect="auto", interpolation="nearest",
                   extent=extent, cmap="Greys", vmin=0, vmax=1)
    axes[2].set_title(f"changed cells ({int(changed.sum())})")
    axes[2].set_ylabel("row (band)")
    axes[2].set_xlabel("time (s)")
    if edges_hz is not None and len(edges_hz) == rows + 1:
        for ax in axes:
            row_axis_labels(ax, edges_hz)
    fig.colorbar(im, ax=axes[:2], label="code", shrink=0.8)
    if prob.max() > 0:
        t = (np.arange(cols) + 0.5) * seconds_per_column
        r = np.arange(rows)
        for ax, colour in zip(axes, ("white", "white", "red")):
            ax.contour(t, r, prob, levels=[1e-6, 0.5], colors=[colour, colour],
                       linewidths=[1.0, 2.0], linestyles=["dashed", "solid"])
    fig.suptitle(title + "\nzone outline: solid = resampling probability 0.5, dashed = outer limit")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _output_format(sf, out_path: str, in_subtype: str):
    import os

    from vqblur.common.errors import UserError

    ext = os.path.splitext(out_path)[1].lower().lstrip(".")
    fmts = {k.lower(): k for k in sf.available_formats()}
    fmt = fmts.get({"aif": "aiff", "oga": "ogg"}.get(ext, ext))
    if fmt is None:
        raise UserError(f"{out_path}: unknown output format '.{ext}' (try .wav or .flac)")
    if in_subtype and sf.check_format(fmt, in_subtype):
        return fmt, in_subtype
    return fmt, sf.default_subtype(fmt)


def run(args) -> int:
    import os
    import time

    import numpy as np
    import soundfile as sf
    from vqblur.engine.blur import (blur_grid, knob_to_temperature, load_nb_table, select_offsets,
                                    zone_probabilities)
    from vqblur.engine.blur.codeblur import drop_finer_levels
    from vqblur.engine.blur.playback import PlaybackBlur
    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Engine, Params
    from vqblur.common.errors import UserError
    from vqblur.common.progress import progress_bar

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        start, end = parse_time_span(args.time)
    except argparse.ArgumentTypeError as exc:
        raise UserError(str(exc)) from None
    if not os.path.isfile(args.input):
        raise UserError(f"{args.input}: input file not found")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise UserError(f"{args.output}: output would overwrite the input")
    try:
        info = sf.info(args.input)
        x, sr = sf.read(args.input, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UserError(f"{args.input}: cannot read audio ({exc})") from None
    n, channels = x.shape
    if n == 0:
        raise UserError(f"{args.input}: no samples")
    duration = n / sr
    if start is not None and start >= duration:
        raise UserError(f"--time starts at {start} s, after the end of {args.input} ({duration:.3f} s)")
    fmt, subtype = _output_format(sf, args.output, info.subtype)

    t0 = time.perf_counter()
    bundle = load_bundle(args.bundle if args.bundle else default_bundle_path())
    use_macro = args.scale > 0.5 and bundle.nb_macro_path is not None
    L, R = bundle.levels, bundle.rows
    if use_macro:
        table = load_nb_table(bundle.nb_macro_path, rows=bundle.rows_macro, codebook_size=bundle.codebook_size)
        grid_rows, first = bundle.rows_macro, L * R
    else:
        table = load_nb_table(bundle.nb_path, rows=R, codebook_size=bundle.codebook_size)
        grid_rows, first = R, 0
    try:
        select_offsets(table.offsets, args.neighbourhood)
    except ValueError as exc:
        raise UserError(f"--neighbourhood: {exc}") from None
    msr = bundle.sample_rate
    xm = x
    if sr != msr:
        import soxr

        xm = soxr.resample(x, sr, msr, quality="VHQ").astype(np.float32)
        if xm.ndim == 1:
            xm = xm[:, None]
    say(f"vqblur blur: {args.input} -> {args.output} ({sr} Hz, {channels} ch, {duration:.2f} s"
        + (f", resampled to {msr} Hz and back" if sr != msr else "") + ")")
    params = Params(**{k.name: getattr(args, k.name) for k in _knobs.COLUMN})
    eng = Engine(bundle, params, channels=channels, seed=args.seed)
    cfg = eng.config

    bar = progress_bar(3, desc="blur", unit="pass", quiet=args.quiet)
    try:
        codes_all = eng.encode_codes(xm)  # [n_codes, C] per stream (linked stereo: one)
        bar.update(1)
        C = codes_all[0].shape[1]
        a, b = time_span_to_columns(start, end, msr, cfg.column_samples, C)
        eng.zone.update(args.zone_size, args.centre)
        rows = eng.zone.macro_rows if use_macro else eng.zone.micro_rows
        in_time = zone_probabilities(1, C, (a, b), 0.0, 1.0)[0]
        prob = rows[:, None] * in_time[None, :]
        befores, afters, players = [], [], []
        for ch, codes in enumerate(codes_all):
            grid = codes[first:first + grid_rows]
            selected = np.zeros(grid.shape, bool)
            new_grid = blur_grid(grid, table, prob, args.temperature, sweeps=args.sweeps,
                                 seed=args.seed + 1_000_003 * ch, offsets=args.neighbourhood,
                                 selected_out=selected)
            new = codes.copy()
            new[first:first + grid_rows] = new_grid
            rows_hit = np.repeat(selected, bundle.macro_factor, axis=0) if use_macro else selected
            drop_finer_levels(new, rows_hit, L, R, bundle.codebook_size)
            view = (lambda g: np.repeat(g, bundle.macro_factor, axis=0)) if use_macro else (lambda g: g)
            players.append(PlaybackBlur(new, view(grid), view(new_grid), span=in_time))
            befores.append(grid)
            afters.append(new_grid)
        bar.update(1)
        eng.samplers = players
        y = eng.render(xm)  # the engine's column step: decode pair, shaping, limiter
        bar.update(1)
    finally:
        bar.close()
    if sr != msr:
        import soxr

        y = soxr.resample(y, msr, sr, quality="VHQ")
        if y.ndim == 1:
            y = y[:, None]
    if len(y) < n:
        y = np.concatenate([y, np.zeros((n - len(y), channels))])
    y = np.ascontiguousarray(y[:n], dtype=np.float64)
    if not np.isfinite(y).all():
        y = np.where(np.isfinite(y), y, 0.0)
    if sr != msr:  # the engine has limited; resampling back may overshoot a little
        np.clip(y, -1.0, 1.0, out=y)
    try:
        sf.write(args.output, y.astype(np.float32), sr, format=fmt, subtype=subtype)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise UserError(f"{args.output}: cannot write audio ({exc})") from None

    in_zone = int((prob > 0).sum())
    changed = sum(int((bb != aa).sum()) for bb, aa in zip(befores, afters))
    which = "macro map" if use_macro else ("micro level 0" if L > 1 or bundle.rows_macro else "codemap")
    say(f"  bundle {bundle.root}; {which} {grid_rows} rows x {C} columns per channel")
    t_b = min(b * cfg.column_samples / msr, duration)
    f_max = float(cfg.model_bin_hz()[0][-1])  # the top model bin
    rows_on = np.flatnonzero(rows)
    rows_text = f"rows {rows_on[0]}..{rows_on[-1]}" if len(rows_on) else "no rows"
    say(f"  zone: columns {a}..{b} ({a * cfg.column_samples / msr:.3f}-{t_b:.3f} s), "
        f"size {args.zone_size:g}, centre {args.centre:g} ({_knobs.centre_hz(args.centre, f_max):.0f} Hz; "
        f"{rows_text}), temperature {args.temperature:g} "
        f"(T = {knob_to_temperature(args.temperature):.3f}), detail {args.detail:g}, {args.sweeps} sweeps, "
        f"seed {args.seed}")
    say(f"  {in_zone} cells in the zone per stream; {changed} codes changed "
        f"({channels} ch, {'linked: one stream' if eng.linked else 'a stream each'}); "
        f"{time.perf_counter() - t0:.2f} s")
    if args.png:
        title = (f"{os.path.basename(args.input)}: zone size {args.zone_size:g}, centre "
                 f"{args.centre:g}, temperature {args.temperature:g}, {args.sweeps} sweeps, seed {args.seed}")
        edges = bundle.row_edges_hz()
        draw_png(args.png, befores[0], afters[0], prob, cfg.column_samples / msr, title,
                 edges[:: bundle.macro_factor] if use_macro else edges)
        say(f"  codemap picture -> {args.png}")
    return 0
