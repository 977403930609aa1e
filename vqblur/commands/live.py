"""`vqblur live`: the effect on an audio interface, knobs on a MIDI controller and/or over OSC,
with a one-line status or a full-terminal view of the code grid (`--view`).

The sounddevice callback only copies between preallocated rings; the Engine runs on a worker
thread, both in an audio process that does nothing else, while this process (the control
process) shows the status and takes OSC and MIDI (see ``vqblur.engine.stage.audio``). Declared
latency = the engine's latency + one host block (the worker's head start), not counting the
interface's own converter/driver buffers.
"""

from __future__ import annotations

import argparse
import sys

from vqblur.commands.argtypes import positive_int as _positive_int, nonneg_int as _nonneg_int, positive_float as _positive_float
from vqblur.engine import knobs as _knobs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "live",
        help="run the effect live on an audio interface, with MIDI knobs",
        description=(
            "Run the effect on an audio interface in real time. Devices and MIDI ports are "
            "chosen by index or by a piece of their name (see --list-devices, --list-midi). "
            "A one-line status shows CPU load, latency, knob values, under-/over-runs and "
            "ignored MIDI messages. Ctrl-C stops."
        ),
        epilog=(
            "examples:\n"
            "  vqblur live --list-devices\n"
            "  vqblur live --input 'Scarlett' --output 'Scarlett' --midi nanoKONTROL2 "
            "--controller korg_nanokontrol2\n"
            "  vqblur live --midi-virtual vqblur --preset smear      # connect a sequencer to it\n"
            "  vqblur live --midi 1 --learn                          # move each control when asked\n"
            "  vqblur live --osc 9000 --view                         # OSC knobs, live code grid\n"
            "  vqblur live --osc 9000 --osc-host 0.0.0.0 --midi 1    # a tablet on the network + MIDI\n"
            "\n"
            "OSC (UDP; one number 0..1 per knob message; last message of MIDI or OSC wins):\n"
            "  /vqblur/<knob> FLOAT   for each knob (the list: vqblur live --list-osc)\n"
            "  /vqblur/preset NAME    a shipped preset (presets/effects/NAME.toml) or --preset's\n"
            "  /vqblur/palette DIR    blur from bundle DIR's Naive Bayes tables (\"\" = the model's)\n"
            "  malformed, out-of-range and unknown messages are counted and ignored\n"
            "\n"
            "latency: engine latency (8.3 ms for the default bundle at 48 kHz) + one host block "
            "(--blocksize; on JACK the server's period; --prefill-blocks N: N blocks), plus the "
            "interface's own buffers.\n"
            "On JACK leave --blocksize at 0: PortAudio then runs at the server's period; any "
            "other value adds one block of PortAudio buffering (counted in the latency shown)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", metavar="DEV", default=None, help="input device: index or name substring")
    p.add_argument("--output", metavar="DEV", default=None, help="output device: index or name substring")
    p.add_argument("--samplerate", type=_positive_int, metavar="HZ", default=None,
                   help="device sample rate (default: the input device's; the engine resamples "
                        "to the model's rate when they differ)")
    p.add_argument("--blocksize", type=_nonneg_int, metavar="N", default=0,
                   help="host block in frames (default 0: the host's own, e.g. the JACK period)")
    p.add_argument("--channels", type=_positive_int, metavar="N", default=1,
                   help="channels (default 1); with more than one, see --stereo")
    p.add_argument("--stereo", choices=("linked", "independent"), default="linked",
                   help="with more than one channel: linked (default: one blur for all channels, "
                        "the stereo image holds, about the cost of mono) or independent (a blur each)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--midi", metavar="PORT", default=None,
                   help="MIDI input port: index or name substring")
    g.add_argument("--midi-virtual", metavar="NAME", default=None,
                   help="create a virtual MIDI input port NAME for other programs to connect to")
    p.add_argument("--midi-api", choices=["auto", "alsa", "jack"], default="auto",
                   help="MIDI system (default auto: JACK MIDI when the audio device is on JACK, "
                        "else rtmidi's default, ALSA on Linux)")
    p.add_argument("--controller", metavar="NAME|PATH", default=None,
                   help="controller map: a name in presets/controllers/ or a .toml path "
                        "(default: the preset's, else 'generic')")
    p.add_argument("--preset", metavar="NAME|PATH", default=None,
                   help="effect preset: a name in presets/effects/ or a .toml path")
    p.add_argument("--bundle", metavar="DIR", default=None,
                   help="model bundle folder (default: the shipped presets/default_bundle)")
    _knobs.add_knob_arguments(p, default_note="starting value; default: the preset's, else {default:g}")
    p.add_argument("--osc", type=_port, metavar="PORT", default=None,
                   help="receive knob changes over OSC on this UDP port (0 = any free port, shown "
                        "at start): /vqblur/<knob> FLOAT 0..1, /vqblur/preset NAME")
    p.add_argument("--osc-host", metavar="HOST", default="127.0.0.1",
                   help="address the OSC server listens on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 for a tablet on the network)")
    p.add_argument("--view", action="store_true",
                   help="full-terminal view: the last seconds of the code grid (codes as colours, "
                        "cells the blur changed, the zone), level meters, knobs, load, counters; "
                        "falls back to the status line when the terminal is too small or not a TTY")
    p.add_argument("--view-seconds", type=_positive_float, metavar="S", default=3.0,
                   help="history the view's grid shows (default 3 s)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--list-midi", action="store_true", help="list MIDI input ports and exit")
    p.add_argument("--list-controllers", action="store_true", help="list shipped controller maps and exit")
    p.add_argument("--list-osc", action="store_true", help="list the OSC addresses and exit")
    p.add_argument("--learn", action="store_true",
                   help="assign each knob by moving a control when asked (needs --midi/--midi-virtual); "
                        "the map is saved to ~/.config/vqblur/controllers/learned.toml")
    p.add_argument("--duration", type=_positive_float, metavar="S", default=None,
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--seed", type=int, default=0, help="blur sampler seed (default 0)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--jack-name", metavar="NAME", default="vqblur",
                   help="JACK client name when the device is on JACK (default vqblur)")
    p.add_argument("--prefill-blocks", type=_positive_int, metavar="N", default=1,
                   help="host blocks of slack the engine's worker gets (default 1); each one more "
                        "adds one block of latency (2.67 ms at 128 frames / 48 kHz) and rides out a "
                        "stall of the machine that long without an under-run")
    p.add_argument("--no-realtime", action="store_true",
                   help="do not ask for a real-time priority for the worker thread")
    p.add_argument("--cpu-idle", action="store_true",
                   help="let idle CPUs sleep deeply while the stream runs. By default the audio "
                        "process asks the kernel (PM QoS, /dev/cpu_dma_latency, where permitted) to "
                        "keep the CPUs' wake-up latency at 0 us: an idle CPU that halts can wake "
                        "milliseconds late for the next period (an under-run); holding it costs "
                        "power, idle CPUs spin")
    p.set_defaults(func=run)


def _port(s: str) -> int:
    v = _nonneg_int(s)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"a UDP port is 0..65535, got {v}")
    return v


def run(args) -> int:
    from vqblur.engine.stage import devices as D
    from vqblur.engine.stage import midi as M
    from vqblur.engine.stage.status import run_live
    from vqblur.common.errors import UserError

    out = sys.stderr
    if args.list_devices or args.list_midi or args.list_controllers or args.list_osc:
        if args.list_osc:
            from vqblur.engine.stage.osc import address_table

            print("OSC addresses (UDP, --osc PORT):", file=sys.stdout)
            for addr, arg, what in address_table():
                print(f"  {addr:<22} {arg:<12} {what}", file=sys.stdout)
        if args.list_devices:
            print("audio devices:", file=sys.stdout)
            print(D.describe_devices(), file=sys.stdout)
        if args.list_midi:
            listing = M.list_midi_ports(None if args.midi_api == "auto" else args.midi_api)
            for line in M.describe_midi_listing(listing):
                print(line, file=sys.stdout)
        if args.list_controllers:
            print("controller maps:", file=sys.stdout)
            for name in M.list_controller_maps():
                cm = M.load_controller_map(name)
                knobs = ", ".join(f"{k}=CC{b.cc}" for k, b in cm.bindings.items())
                print(f"  {name}: {cm.name} ({knobs})", file=sys.stdout)
        return 0
    if args.learn and not (args.midi is not None or args.midi_virtual):
        raise UserError("--learn needs a MIDI input: --midi PORT or --midi-virtual NAME")

    # knobs: preset, then MIDI
    from vqblur.engine.core import Params

    params = Params()
    controller = args.controller
    preset = None
    if args.preset:
        from vqblur.engine.presets import load_preset

        preset = load_preset(args.preset)
        params = preset.params
        if controller is None:
            controller = preset.controller
    params = params.replace(**_knobs.given_knobs(args))  # a knob's MIDI control overrides it once moved

    # audio devices first: a missing device is the most common mistake
    in_dev = D.find_device(args.input, "input")
    out_dev = D.find_device(args.output, "output")
    sd = D.sd()
    dev_in = sd.query_devices(in_dev)
    sr = args.samplerate or int(round(dev_in["default_samplerate"]))
    on_jack = D.is_jack(sd, dev_in)
    # This process is the control process: the audio runs in a process of its own (the
    # engine, the callback and the worker, nothing else; vqblur.engine.stage.audio). Let go of
    # PortAudio here so that this process keeps no audio client of its own.
    sd._terminate()

    from vqblur.engine.stage.audio import AudioProcess, AudioProcessFailed
    from vqblur.engine.stage.control import KnobMux, KnobPump

    midi = None
    osc = None
    reader = None
    runner = None
    pump = None
    view = None
    try:
        if args.midi is not None or args.midi_virtual:
            api = args.midi_api
            if api == "auto" and on_jack:
                api = "jack"  # audio on JACK: use JACK MIDI too (one graph, one clock)
            midi = M.MidiInput(api=api, client_name=args.jack_name)
            if args.midi_virtual:
                midi.open_virtual(args.midi_virtual)
            else:
                midi.open_port(args.midi)
            print(f"vqblur live: MIDI input '{midi.port_name}' ({midi.api_name})", file=out)
            if args.learn:
                cmap = M.learn(midi, M.KNOBS)
                path = M.save_controller_map(cmap, M.learned_map_path())
                print(f"vqblur live: learned map saved to {path} (use --controller {path})", file=out)
            else:
                cmap = M.load_controller_map(controller or "generic")
            print(f"vqblur live: controller map '{cmap.name}': "
                  + ", ".join(f"{k}=CC{b.cc}" + (f"/ch{b.channel + 1}" if b.channel is not None else "")
                              for k, b in cmap.bindings.items()), file=out)
            reader = M.KnobReader(midi, cmap, defaults=params.as_dict())
        if args.osc is not None:
            from vqblur.engine.stage.osc import OscControl, address_table

            # In this (control) process the OSC thread shares no lock with the audio: normal
            # priority is enough.
            osc = OscControl(args.osc_host, args.osc, priority=0)
            if preset is not None and preset.path is not None:
                from vqblur.engine.presets import effects_dir

                if preset.path.parent.resolve() != effects_dir().resolve():
                    # --preset FILE: /vqblur/preset <its file name> chooses it again
                    osc.add_preset(preset.path.stem, preset.params.as_dict(), preset.palette)
            osc.start()
            print(f"vqblur live: OSC on {osc.url}: "
                  + ", ".join(a for a, _, _ in address_table()), file=out)
        mux = KnobMux(params.as_dict(), midi_reader=reader, osc=osc)
        runner = AudioProcess(dict(
            bundle=args.bundle, samplerate=sr, blocksize=args.blocksize, channels=args.channels,
            stereo=args.stereo,
            input=in_dev, output=out_dev, jack_name=args.jack_name if on_jack else None,
            params=params.as_dict(), seed=args.seed, threads=args.threads,
            worker_priority=0 if args.no_realtime else 3, view=bool(args.view),
            palette=preset.palette if preset is not None else None,
            prefill_blocks=args.prefill_blocks, hold_cpu_wakeup=not args.cpu_idle,
        ), knobs=_knobs.NAMES)
        try:
            runner.start()  # the audio process loads the bundle and opens the stream
        except AudioProcessFailed as exc:
            return exc.code  # it said why on stderr
        pump = KnobPump(mux, runner.share).start()
        for src in (midi, osc):
            if src is not None:
                src.on_message = pump.notify
        if osc is not None:
            osc.on_palette = runner.load_palette  # the audio process loads it, off the worker
        view = _make_view(args, runner, midi, osc) if args.view else None
        code = run_live(runner, midi=midi, duration_s=args.duration, out=out, osc=osc, view=view)
        if runner.abandoned:
            # The audio server died under the stream: PortAudio and a JACK MIDI port would
            # hang in their exit handlers waiting for it. Everything is reported; leave now.
            import os

            _close(view, pump, runner)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    finally:
        _close(view, pump, runner)
        if osc is not None:
            osc.close()
        if midi is not None:
            midi.close()


def _close(view, pump, runner) -> None:
    if view is not None:
        view.stop()  # (again: idempotent) frees the shared memory
        view.tap.close()
    if pump is not None:
        pump.close()
    if runner is not None:
        runner.close()


def _make_view(args, runner, midi, osc):
    """A ViewProcess on the engine's column tap, which the audio process made in shared memory."""
    from vqblur.engine.stage.osc import knob_names
    from vqblur.engine.stage.tap import ColumnTap
    from vqblur.engine.stage.view import ViewProcess

    info = runner.info
    tap = ColumnTap.attach(info["tap"])
    return ViewProcess(runner, tap, knobs=knob_names(), midi=midi, osc=osc, seconds=args.view_seconds,
                       columns_per_second=info["columns_per_second"], band_hz=info["band_hz"],
                       codebook_size=info["codebook_size"], zone_axis=info.get("zone_axis"))
