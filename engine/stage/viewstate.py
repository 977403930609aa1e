"""What the live view shows, as numbers in (shared) memory: :class:`ViewState`, filled from a
live runner by :class:`ViewPublisher` on the status loop's thread; :func:`status_text` makes
the one-line status from it. See ``vqblur.engine.stage.view`` for who reads it and why.
"""

from __future__ import annotations

import math

import numpy as np

_FIELDS = ("stop", "published", "samplerate", "channels", "host_block", "latency_samples",
           "underruns", "overruns", "late", "resyncs", "xruns", "max_chunk_s", "dsp", "cpu",
           "column_p99", "column_s", "in_peak", "in_rms", "out_peak", "out_rms", "midi_on",
           "midi_received", "midi_ignored", "osc_on", "osc_received", "osc_ignored", "demoted",
           "grid_channel", "view_frames", "view_errors", "view_render_s", "note_t")
#: short texts after the numbers (UTF-8, NUL-terminated): the palette playing, the last note
#: (a palette request's outcome, shown for NOTE_S seconds from ``note_t``)
_TEXTS = ("palette", "note")
TEXT_BYTES = 256
NOTE_S = 10.0


class ViewState:
    """Named float64 slots (``state["underruns"]``), local or in shared memory, plus one slot
    per knob (``state.knob(name)``, NaN = not known yet) and a few short texts
    (``state.text("palette")``). Each slot has one writer: the control process's status loop,
    except ``view_*`` (the view process)."""

    def __init__(self, knobs: tuple[str, ...], shared: bool = False, _attach: str | None = None):
        self.knobs = tuple(knobs)
        self._index = {f: i for i, f in enumerate(_FIELDS)}
        for i, k in enumerate(self.knobs):
            self._index["knob:" + k] = len(_FIELDS) + i
        n = len(self._index)
        self._shm = None
        nt = TEXT_BYTES * len(_TEXTS)
        if shared or _attach is not None:
            from vqblur.engine.stage.tap import shared_block

            self._shm = shared_block(8 * n + nt, _attach)
            self.values = np.ndarray((n,), np.float64, self._shm.buf)
            self._texts = np.ndarray((len(_TEXTS), TEXT_BYTES), np.uint8, self._shm.buf, 8 * n)
        else:
            self.values = np.zeros(n, np.float64)
            self._texts = np.zeros((len(_TEXTS), TEXT_BYTES), np.uint8)
        if _attach is None:
            self.values[:] = 0.0
            self._texts[:] = 0
            for k in self.knobs:
                self.values[self._index["knob:" + k]] = math.nan

    @property
    def name(self) -> str | None:
        return self._shm.name if self._shm is not None else None

    def __getitem__(self, field: str) -> float:
        return float(self.values[self._index[field]])

    def __setitem__(self, field: str, value: float) -> None:
        self.values[self._index[field]] = value

    def knob(self, name: str) -> float:
        return float(self.values[self._index["knob:" + name]])

    def text(self, name: str) -> str:
        """A text slot ("" until set); a reader racing the writer may see a mix, never raises."""
        raw = bytes(self._texts[_TEXTS.index(name)])
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def set_text(self, name: str, text: str) -> None:
        b = text.encode("utf-8", "replace")[: TEXT_BYTES - 1]
        row = self._texts[_TEXTS.index(name)]
        row[len(b)] = 0
        row[: len(b)] = np.frombuffer(b, np.uint8)

    def knob_values(self) -> dict[str, float]:
        """The knobs known so far, in declaration order."""
        out = {}
        for k in self.knobs:
            v = self.knob(k)
            if not math.isnan(v):
                out[k] = v
        return out

    def close(self, unlink: bool = False) -> None:
        shm, self._shm = self._shm, None
        if shm is None:
            return
        self.values = np.zeros(len(self._index))  # keep the object usable after closing
        self._texts = np.zeros_like(self._texts)
        from vqblur.engine.stage.tap import release_block

        release_block(shm, unlink)


class ViewPublisher:
    """Fills a :class:`ViewState` from a live runner (and MIDI/OSC inputs). Runs on the
    status loop's thread (the main thread), never in the audio callback or the worker."""

    def __init__(self, runner, state: ViewState, midi=None, osc=None, grid_channel: int = 0,
                 meter_s: float = 0.1) -> None:
        self.runner, self.state, self.midi, self.osc = runner, state, midi, osc
        self.grid_channel = grid_channel
        m = max(64, int(runner.samplerate * meter_s))
        self._m = min(m, runner.in_ring.capacity // 4)
        self._buf = np.zeros((self._m, runner.channels), np.float32)

    def _levels(self, ring, end: int) -> tuple[float, float]:
        m, buf = self._m, self._buf
        if end < m or not ring.read_at(end - m, buf):
            return 0.0, 0.0
        return float(np.max(np.abs(buf))), float(np.sqrt(np.mean(np.square(buf, dtype=np.float64))))

    def publish(self, cpu: float | None = None, dsp: float | None = None) -> None:
        r, s = self.runner, self.state
        s["samplerate"] = r.samplerate
        s["channels"] = r.channels
        c = r.counters
        s["host_block"] = c.host_block or 0
        s["latency_samples"] = r.latency_samples
        s["underruns"], s["overruns"] = c.underruns, c.overruns
        s["late"], s["resyncs"], s["xruns"] = c.deadline_misses, c.resyncs, c.status_flags
        s["max_chunk_s"] = c.worker_max_chunk_s
        s["demoted"] = 1.0 if r.worker_demoted else 0.0
        if cpu is not None:
            s["cpu"] = cpu
        if dsp is not None:
            s["dsp"] = dsp
        s["in_peak"], s["in_rms"] = self._levels(r.in_ring, r.in_ring.write_pos)
        s["out_peak"], s["out_rms"] = self._levels(r.out_ring, r.out_ring.read_pos)
        stats = getattr(r.processor, "stats", None)
        if stats is not None and getattr(stats, "columns", 0) > 0:
            ct = stats.column_times
            k = min(stats.columns, 300, len(ct))
            s["column_p99"] = float(np.percentile(ct[np.arange(stats.columns - k, stats.columns) % len(ct)], 99))
        for k, v in (r.knob_values or {}).items():
            if "knob:" + k in s._index:
                s.values[s._index["knob:" + k]] = v
        if self.midi is not None:
            s["midi_on"], s["midi_received"], s["midi_ignored"] = 1, self.midi.received, self.midi.ignored
        if self.osc is not None:
            s["osc_on"], s["osc_received"], s["osc_ignored"] = 1, self.osc.received, self.osc.ignored
        pal = getattr(r, "palette", None)
        if pal and pal != s.text("palette"):
            s.set_text("palette", pal)
        s["grid_channel"] = self.grid_channel
        s["published"] = s["published"] + 1


def status_text(s: ViewState) -> str:
    """The one-line status (as ``vqblur.engine.stage.status.format_status``) from a ViewState."""
    kv = s.knob_values()
    sr = s["samplerate"] or 1.0
    parts = [f"cpu {s['cpu']:5.1f}%", f"dsp {s['dsp']:5.1f}%",
             f"lat {1000 * s['latency_samples'] / sr:5.2f} ms",
             " ".join(f"{k} {v:.2f}" for k, v in kv.items()) or "knobs -",
             f"under {s['underruns']:.0f} over {s['overruns']:.0f} late {s['late']:.0f} "
             f"xrun {s['xruns']:.0f}"]
    if s["midi_on"]:
        parts.append(f"midi {s['midi_received']:.0f} ign {s['midi_ignored']:.0f}")
    if s["osc_on"]:
        parts.append(f"osc {s['osc_received']:.0f} ign {s['osc_ignored']:.0f}")
    if s.text("palette"):
        parts.append(f"palette {s.text('palette')}")
    return " | ".join(parts)
