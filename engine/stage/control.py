"""Knob sources merged for the live worker: the preset, then MIDI and OSC, last message wins.

:class:`KnobMux.read` is what ``LiveRunner(knobs=...)`` calls once per audio block on the
worker thread (never in the audio callback). It compares each source's per-knob message
stamps with what it saw at the previous read and takes, for every knob, the value of the
source that sent a message for it since: MIDI (``MidiInput.cc_seq`` / button presses of the
knob's binding) and OSC (``OscSnapshot.seq``). So OSC and MIDI can drive the same knob:
whichever moved it last holds it. When both move one knob within the same block (2.7 ms at
128 frames / 48 kHz) OSC wins. The values then reach the engine's ``set_params`` and are
smoothed there, whatever their source.
"""

from __future__ import annotations

from typing import Any


class KnobMux:
    """Merge a preset (``defaults``), a :class:`~vqblur.engine.stage.midi.KnobReader` and an
    :class:`~vqblur.engine.stage.osc.OscControl` (either may be None) into one knob dict."""

    def __init__(self, defaults: dict[str, float], midi_reader: Any = None, osc: Any = None) -> None:
        self.values: dict[str, float] = dict(defaults)
        self.midi_reader = midi_reader
        self.osc = osc
        self._midi_bind = []
        if midi_reader is not None and midi_reader.cmap is not None and midi_reader.midi is not None:
            self._midi_bind = list(midi_reader.cmap.bindings.items())
        self._midi_seen = {k: self._midi_stamp(b) for k, b in self._midi_bind}
        self._osc_seen = osc.snapshot.seq if osc is not None else ()

    def _midi_stamp(self, b) -> int:
        m = self.midi_reader.midi
        if b.toggle:
            return int(m.presses[:, b.cc].sum()) if b.channel is None else int(m.presses[b.channel, b.cc])
        if b.channel is None:
            return int(m.cc_seq[:, b.cc].max())
        return int(m.cc_seq[b.channel, b.cc])

    def read(self) -> dict[str, float]:
        """The current knob values (the same dict object, updated in place)."""
        vals = self.values
        if self._midi_bind:
            mv = self.midi_reader.read()
            seen = self._midi_seen
            for knob, b in self._midi_bind:
                s = self._midi_stamp(b)
                if s != seen[knob]:
                    seen[knob] = s
                    v = mv.get(knob)
                    if v is not None:
                        vals[knob] = v
        osc = self.osc
        if osc is not None:
            snap = osc.snapshot
            if snap.seq is not self._osc_seen:
                seen = self._osc_seen
                for i, knob in enumerate(osc.names):
                    if snap.seq[i] != seen[i]:
                        vals[knob] = snap.value[i]
                self._osc_seen = snap.seq
        return vals


class KnobPump:
    """In the control process of ``vqblur live``: hand the merged knobs to the audio process.

    A thread that sleeps until the OSC server or the MIDI input says a message arrived
    (:meth:`notify`, called once per batch they drained), then reads ``mux`` (a
    :class:`KnobMux`) and, when a value moved, writes them all to ``share`` (a
    :class:`~vqblur.engine.stage.share.StageShare`), where the worker reads them once per block.
    The messages are parsed here, in the control process, so no OSC or MIDI code runs in the
    audio process. ``fallback_s``: it also looks that often without a notification.
    """

    def __init__(self, mux: KnobMux, share: Any, fallback_s: float = 0.1) -> None:
        import threading

        self.mux, self.share, self.fallback_s = mux, share, float(fallback_s)
        self._event = threading.Event()
        self._stop = threading.Event()
        self._last: dict[str, float] = {}
        self._thread = threading.Thread(target=self._loop, name="vqblur-knob-pump", daemon=True)
        self.published = 0

    def notify(self) -> None:
        self._event.set()

    def start(self) -> "KnobPump":
        self.pump()
        self._thread.start()
        return self

    def pump(self) -> None:
        vals = self.mux.read()
        if vals != self._last:
            self._last = dict(vals)
            self.share.set_knobs(self._last)
            self.published += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._event.wait(self.fallback_s)
            self._event.clear()
            if self._stop.is_set():
                break
            self.pump()

    def close(self) -> None:
        self._stop.set()
        self._event.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
