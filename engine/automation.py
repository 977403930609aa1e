"""Knob automation for offline rendering, evaluated once per block.

Two sources:

* JSON breakpoints: a list ``[{"time": 0.0, "zone_size": 0.2}, {"time": 2.5, "zone_size":
  0.8, "mix": 0.5}, ...]`` (or ``{"breakpoints": [...]}``). Times in seconds of the input.
  Each knob is interpolated linearly between the breakpoints that name it, holds its first
  value before the first and its last value after the last; knobs no breakpoint names are
  not automated (the preset / command-line value stays). Equal times make a step.
* MIDI file control changes (mido; tempo map honoured, all tracks, any channel). Each CC is
  held until the next one (a controller is a step, not a ramp; the engine's knob smoothing
  removes the zipper). Value ``v`` (0..127) becomes ``v / 127``; for ``bypass`` ``v >= 64`` is
  on. The default CC map is the one of ``presets/controllers/generic.toml``:

    ====== ============= ==============================
    CC     knob          (General MIDI name)
    ====== ============= ==============================
    1      zone_size     modulation wheel
    74     temperature   sound controller 5, brightness
    71     centre        sound controller 2, resonance
    91     mix           effects 1 depth
    80     bypass        general purpose 5 (>= 64 on)
    75     detail        sound controller 6
    ====== ============= ==============================

  (the declared default CCs, ``vqblur.engine.knobs``; a toggle knob is on for ``v >= 64``)

``Automation.values_at(t)`` -> ``{knob: value}`` for the automated knobs.
Malformed files raise :class:`vqblur.common.errors.UserError` naming the file (and the entry).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqblur.engine import knobs as _knobs
from vqblur.common.errors import UserError

DEFAULT_CC_MAP: dict[int, str] = _knobs.default_cc_map()


@dataclass
class Automation:
    """Per-knob breakpoint curves: times (s, sorted) and values (0..1)."""

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    mode: str = "linear"  # "linear" (JSON) or "step" (MIDI CCs)
    source: str = ""

    @property
    def knobs(self) -> list[str]:
        return sorted(self.curves)

    @property
    def duration(self) -> float:
        return max((float(t[-1]) for t, _ in self.curves.values()), default=0.0)

    def values_at(self, t: float) -> dict[str, float]:
        out = {}
        for k, (times, vals) in self.curves.items():
            if self.mode == "step":
                i = int(np.searchsorted(times, t, side="right")) - 1
                out[k] = float(vals[max(i, 0)])
            else:
                out[k] = float(np.interp(t, times, vals))
        return out


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _knob_value(k: str, v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(_knobs.as_float(v)):
        lo, hi = _knobs.BY_NAME[k].lo, _knobs.BY_NAME[k].hi
        raise UserError(f"{where}: '{k}' must be a number in {lo:g}..{hi:g}, got {_short(v)}")
    try:
        return _knobs.check_value(k, v, where)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def parse_breakpoints(points, source: str = "<memory>") -> Automation:
    if isinstance(points, dict) and "breakpoints" in points:
        points = points["breakpoints"]
    if not isinstance(points, list) or not points:
        raise UserError(f"{source}: automation must be a non-empty JSON list of breakpoints")
    acc: dict[str, list[tuple[float, int, float]]] = {}
    for i, bp in enumerate(points):
        where = f"{source}: breakpoint {i}"
        if not isinstance(bp, dict) or "time" not in bp:
            raise UserError(f"{where} must be an object with a 'time' (seconds)")
        t = bp["time"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(_knobs.as_float(t)) or t < 0:
            raise UserError(f"{where}: 'time' must be a number of seconds >= 0, got {_short(t)}")
        for k, v in bp.items():
            if k == "time":
                continue
            if k not in _knobs.BY_NAME:
                raise UserError(f"{where}: unknown knob '{k}'; knobs are {', '.join(_knobs.NAMES)}")
            acc.setdefault(k, []).append((float(t), i, _knob_value(k, v, where)))
    if not acc:
        raise UserError(f"{source}: no breakpoint names a knob")
    curves = {}
    for k, lst in acc.items():
        lst.sort()  # by time, then file order (equal times make a step)
        curves[k] = (np.array([a for a, _, _ in lst]), np.array([c for _, _, c in lst]))
    return Automation(curves, "linear", source)


def automation_from_midi(path: str | Path, cc_map: dict[int, str] | None = None) -> Automation:
    import mido

    cc_map = DEFAULT_CC_MAP if cc_map is None else cc_map
    for cc, k in cc_map.items():
        if k not in _knobs.BY_NAME:
            raise UserError(f"CC map: CC {cc} -> unknown knob '{k}'")
    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise UserError(f"{path}: not a readable MIDI file ({str(exc) or type(exc).__name__})") from None
    acc: dict[str, list[tuple[float, float]]] = {}
    t = 0.0
    for msg in mid:  # merged tracks, .time = delta seconds (tempo map applied)
        t += msg.time
        if msg.type == "control_change" and msg.control in cc_map:
            k = cc_map[msg.control]
            v = _knobs.BY_NAME[k].from_midi(msg.value)
            acc.setdefault(k, []).append((t, v))
    if not acc:
        ccs = ", ".join(f"CC {c} -> {k}" for c, k in sorted(cc_map.items()))
        raise UserError(f"{path}: no control change for a mapped knob ({ccs})")
    curves = {k: (np.array([a for a, _ in v]), np.array([b for _, b in v])) for k, v in acc.items()}
    return Automation(curves, "step", str(path))


def load_automation(path: str | Path, cc_map: dict[int, str] | None = None) -> Automation:
    """A .json breakpoint list or a .mid/.midi file's CCs."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: automation file not found")
    suffix = p.suffix.lower()
    if suffix in (".mid", ".midi", ".smf"):
        return automation_from_midi(p, cc_map)
    if suffix == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{p}: not valid JSON ({exc})") from None
        except RecursionError:
            raise UserError(f"{p}: not a breakpoint list (JSON nested too deeply)") from None
        except OSError as exc:
            raise UserError(f"{p}: cannot read ({exc.strerror})") from None
        return parse_breakpoints(data, str(p))
    raise UserError(f"{p}: automation must be a .json breakpoint list or a .mid file")
