"""`vqblur demo`: the main job. Renders the bundled clip through the streaming engine on the
default bundle with a knob automation; writes WAVs and a spectrogram PNG; prints latency,
zone-0 quality, the output level change, real-time factor and energy per second of audio.
Needs no audio interface and no torch."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

from vqblur.engine import knobs as _knobs

# The zone opens from 0 while the temperature rises and the centre sweeps up through the clip's
# own range (half its energy lies below 260 Hz, 99 % below 4.7 kHz), then closes again. The
# centre is read on the perceptual knob axis (vqblur.common.freqaxis, engine.knobs.centre_hz):
# 0.2 ~ 370 Hz, 0.35 ~ 1 kHz, 0.5 ~ 2.2 kHz. mix stays at its default (1, fully wet), so it
# is not automated.
DEMO_AUTOMATION = [
    {"time": 0.0, "zone_size": 0.0, "temperature": 0.2, "centre": 0.2},
    {"time": 1.0, "zone_size": 0.0, "temperature": 0.2, "centre": 0.2},
    {"time": 3.0, "zone_size": 0.5, "temperature": 0.6, "centre": 0.35},
    {"time": 4.5, "zone_size": 0.8, "temperature": 0.9, "centre": 0.5},
    {"time": 6.0, "zone_size": 0.1, "temperature": 0.4, "centre": 0.3},
]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="render the bundled clip with a knob automation (no audio interface needed)",
        description=(
            "Render the bundled 6 s clip (or --input) through the streaming engine twice: at "
            "zone size 0 and detail 0 (the codec's resynthesis, its band levels held to the input's) and with a knob automation that opens "
            "the blur zone while the temperature rises (the knob options set the knobs the "
            "automation does not name, e.g. --detail). Writes OUT/demo_input.wav, demo_zone0.wav, "
            "demo_blurred.wav and demo_spectrogram.png, and prints declared vs measured latency, "
            "the level change (output RMS against input RMS, in dB), real-time factor and energy "
            "per second of audio."
        ),
        epilog=(
            "examples:\n"
            "  vqblur demo                                  # the bundled clip -> out/\n"
            "  vqblur demo --input guitar.wav --out /tmp/demo\n"
            "  vqblur demo --bundle runs/mine/bundle --block 64 --seed 3\n"
            "  vqblur demo --watts-per-core 15              # your CPU's power for the energy estimate"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bundle", help="model bundle folder (default: the shipped default bundle)")
    p.add_argument("--input", help="audio file to use instead of the bundled clip")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--block", type=int, default=128, help="host block size in samples (default 128)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--watts-per-core", type=float, default=None,
                   help="CPU power figure for the energy estimate when no RAPL counter is readable")
    _knobs.add_knob_arguments(p, default_note="the automation's where it names the knob, else {default:g}")
    p.set_defaults(func=run)


def level_change_db(x: np.ndarray, y: np.ndarray) -> float:
    """Output level against input level: 20 log10(RMS(y) / RMS(x)), in dB (0 = same level)."""
    import numpy as np

    rx = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    ry = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    eps = 1e-12
    return 20.0 * float(np.log10((ry + eps) / (rx + eps)))


def _render(engine, audio, block: int, automation=None):
    """Feed mono `audio` [n] block by block; returns the latency-compensated output and CPU seconds."""
    import time

    import numpy as np

    D = engine.latency_samples
    x = np.concatenate([audio.astype(np.float32), np.zeros(D, np.float32)])
    y = np.empty_like(x)
    sr = engine.sample_rate
    cpu0 = time.process_time()
    for a in range(0, len(x), block):
        if automation is not None:
            engine.set_params(**automation.values_at(a / sr))
        y[a : a + block] = engine.process(x[a : a + block])
    cpu = time.process_time() - cpu0
    return y[D:], cpu


def run(args: argparse.Namespace) -> int:
    import importlib.resources
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from vqblur.engine.automation import parse_breakpoints
    from vqblur.measure.latency import measure_delay
    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Engine, Params
    from vqblur.common.energy import EnergyMeter
    from vqblur.common.spectral import audio_quality
    from vqblur.common.errors import UserError

    bundle = load_bundle(args.bundle or default_bundle_path())
    if args.input:
        src = Path(args.input)
    else:
        src = Path(str(importlib.resources.files("vqblur.presets") / "clips" / "demo.wav"))
    if not src.exists():
        raise UserError(f"input not found: {src}")
    try:
        audio, sr = sf.read(str(src), dtype="float32", always_2d=True)
    except Exception as exc:
        raise UserError(f"{src}: cannot read audio ({exc})") from exc
    audio = audio.mean(axis=1)
    if sr != bundle.sample_rate:
        import soxr

        audio = soxr.resample(audio, sr, bundle.sample_rate).astype(np.float32)
        sr = bundle.sample_rate
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = len(audio) / sr

    # 1) zone 0 and detail 0: the codec (its band levels held), and the latency measured by cross-correlation
    engine = Engine(bundle, Params(zone_size=0.0, mix=1.0, detail=0.0), seed=args.seed)
    engine.process(np.zeros(1, np.float32))  # warm the sessions
    engine.reset()
    D = engine.latency_samples
    raw = np.concatenate([audio, np.zeros(D, np.float32)])
    y_raw = np.concatenate([engine.process(raw[a : a + args.block]) for a in range(0, len(raw), args.block)])
    measured = measure_delay(audio, y_raw, max_lag=2 * D)
    zone0 = y_raw[D : D + len(audio)]
    quality = audio_quality(audio, zone0)

    # 2) the automation, timed: real-time factor and energy per second of audio
    automation = parse_breakpoints(DEMO_AUTOMATION, "demo automation")
    base = Params(**_knobs.given_knobs(args))
    engine = Engine(bundle, base.replace(**automation.values_at(0.0)), seed=args.seed)
    meter = EnergyMeter(args.watts_per_core)
    blurred, cpu = _render(engine, audio, args.block, automation)
    p = engine.params
    energy = meter.read()
    rtf = cpu / seconds

    sf.write(out / "demo_input.wav", audio, sr, subtype="PCM_16")
    sf.write(out / "demo_zone0.wav", zone0, sr, subtype="PCM_16")
    sf.write(out / "demo_blurred.wav", blurred, sr, subtype="PCM_16")
    png = out / "demo_spectrogram.png"
    _plot(png, sr, audio, zone0, blurred, automation, seconds)

    print(f"bundle       {bundle.root}")
    print(f"input        {src} ({seconds:.1f} s at {sr} Hz), host block {args.block}")
    print(f"latency      declared {D} samples = {1000 * D / sr:.2f} ms at {sr} Hz (the model's rate); "
          f"measured {measured} samples")
    print("knobs        " + "  ".join(f"{k} {v:g}" for k, v in p.as_dict().items() if k not in automation.curves)
          + f"  (automated: {', '.join(automation.knobs)})")
    print(f"zone 0       (detail 0, the codec, band levels held) spectral convergence {quality['sc_db']:.1f} dB, "
          f"log-spectral distance {quality['lsd_db']:.2f} dB")
    print(f"level        zone 0 (detail 0) {level_change_db(audio, zone0):+.1f} dB, blurred "
          f"{level_change_db(audio, blurred):+.1f} dB (output RMS against input RMS)")
    print(f"real time    {rtf:.3f} x (CPU seconds per second of audio, one thread; {1 / max(rtf, 1e-9):.0f}x faster than real time)")
    print(f"energy       {energy.joules / seconds:.3f} J per second of audio ({energy.method}: {energy.source})")
    print(f"wrote        {out / 'demo_input.wav'}, {out / 'demo_zone0.wav'}, {out / 'demo_blurred.wav'}, {png}")
    return 0


SPEC_NFFT, SPEC_HOP = 2048, 256  # 23 Hz bins: the log axis shows the low octaves


def spectrogram_db(sig: np.ndarray, sr: int, nfft: int = SPEC_NFFT,
                   hop: int = SPEC_HOP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`vqblur.measure.spectrogram.spectrogram_db` (dB re a full-scale sine, 0 s to the
    end): ``(S_db [bins, frames], times [frames], freqs [bins])``."""
    from vqblur.measure.spectrogram import spectrogram_db as spec

    return spec(sig, sr, nfft, hop)


def make_figure(sr: int, audio: np.ndarray, zone0: np.ndarray, blurred: np.ndarray, automation,
                seconds: float) -> Figure:
    """The demo picture: three spectrograms (input, zone 0, blurred) on one dB colour bar, and
    the knob automation below, all on a time axis from 0 s to the end of the clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig = plt.figure(figsize=(10.5, 10))
    gs = fig.add_gridspec(4, 2, height_ratios=[3, 3, 3, 1.4], width_ratios=[1, 0.022], wspace=0.03)
    axes = [fig.add_subplot(gs[0, 0])]
    axes += [fig.add_subplot(gs[i, 0], sharex=axes[0]) for i in (1, 2, 3)]
    from vqblur.measure.spectrogram import axis_label, draw_spectrogram, knob_axis_ticks

    image = None
    t = np.linspace(0, seconds, 300)
    vals = [automation.values_at(float(x)) for x in t]
    for ax, sig, title in zip(axes, (audio, zone0, blurred),
                              (f"input (frequency: {axis_label()}, the knobs' axis)",
                               "zone 0, detail 0 (the codec, band levels held)",
                               "blurred (automation below; dashed: the zone's centre)")):
        # 0 Hz to the Nyquist frequency on the knob axis: a centre value is a height here
        image = draw_spectrogram(ax, sig, sr, SPEC_NFFT, SPEC_HOP, label=False)
        ax.set_ylabel("Hz")
        ax.set_title(title, loc="left", fontsize=10)
        ax.tick_params(labelbottom=False)
    if "centre" in automation.curves:
        axes[2].plot(t, [v["centre"] for v in vals], color="white", lw=1.0, ls="--", alpha=0.8)
        axes[2].set_ylim(0.0, 1.0)
    cax = fig.add_subplot(gs[0:3, 1])
    cbar = fig.colorbar(image, cax=cax)
    cbar.set_label("level (dB re full-scale sine)")
    for knob in ("zone_size", "temperature", "centre"):
        axes[3].plot(t, [v.get(knob, np.nan) for v in vals], label=knob)
    axes[3].set_ylim(-0.05, 1.05)
    axes[3].set_xlabel("time (s)")
    axes[3].set_ylabel("knob")
    axes[3].legend(loc="upper left", fontsize=8, ncol=3)
    hz = axes[3].twinx()  # the centre's frequency, on the same knob axis as the pictures
    pos, labels = knob_axis_ticks(sr / 2)
    hz.set_ylim(*axes[3].get_ylim())
    hz.set_yticks(pos[1::2], labels[1::2], fontsize=7)
    hz.set_ylabel("centre Hz", fontsize=8)
    axes[0].set_xlim(0.0, seconds)  # shared: every panel starts at 0 s and ends with the clip
    fig.subplots_adjust(left=0.08, right=0.92, top=0.97, bottom=0.06, hspace=0.25)
    return fig


def _plot(path, sr, audio, zone0, blurred, automation, seconds) -> None:
    import matplotlib.pyplot as plt

    fig = make_figure(sr, audio, zone0, blurred, automation, seconds)
    fig.savefig(path, dpi=90)
    plt.close(fig)
