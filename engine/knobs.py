"""The knobs, declared once, as data.

Every knob of the effect is one :class:`Knob` in :data:`ALL`; everything else is derived from
this tuple: :class:`vqblur.engine.core.Params` (one field per knob, clamped to the range),
the names ``KNOBS`` (``engine/core.py``, ``engine/midi.py``), the CLI flags of ``process``,
``blur``, ``demo``, ``live`` and ``bench`` (:func:`add_knob_arguments`), preset and automation
validation (:func:`check_value`), the default MIDI CC map (:func:`default_cc_map`),
controller-map checks and ``--learn``, the live status line (:func:`status_text`) and the docs
table (:func:`docs_table`, checked against README.md and docs/ARCHITECTURE.md by a test;
``python -m vqblur.engine.knobs`` rewrites both).

Adding a knob = one declaration here + its DSP (the engine reads the smoothed value of a
``"column"`` knob as ``engine.knob(name)``, the per-sample ramp of a ``"sample"`` knob is
computed for it too). Neutone's parameter declarations are the model.

Smoothing:

* ``"column"``: one-pole per code column (time constant ``CODEC_KNOB_TAU``, 20 ms): the codec
  knobs, read once per code column;
* ``"sample"``: per-sample one-pole (``GAIN_TAU``, 10 ms, closed form): the gains.

A ``toggle`` knob is a switch: values > 0.5 are on (the engine crossfades to 1, else to 0);
a MIDI value >= 64 is on, and controller maps bind it to a button that flips it on each press.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

Smoothing = Literal["column", "sample"]


@dataclass(frozen=True)
class Knob:
    """One knob: a number in ``lo..hi`` (always 0..1 today)."""

    name: str  #: Python / preset / automation name, e.g. ``"zone_size"``
    default: float  #: the :class:`Params` default
    smoothing: Smoothing  #: ``"column"`` (codec knobs) or ``"sample"`` (gains)
    cc: int  #: default MIDI CC (the generic controller map, MIDI-file automation)
    help: str  #: one line for ``--help`` (what the value does)
    mapping: str  #: the docs table's "mapping" column (Markdown)
    label: str  #: short name on the live status line
    metavar: str = "V"
    lo: float = 0.0
    hi: float = 1.0
    toggle: bool = False  #: a switch (> 0.5 = on); a button in controller maps
    aliases: tuple[str, ...] = ()  #: extra CLI spellings, e.g. ``("--center",)``

    @property
    def flag(self) -> str:
        """The CLI option: ``zone_size`` -> ``--zone-size``."""
        return "--" + self.name.replace("_", "-")

    def target(self, value: float) -> float:
        """What the engine smooths toward: the value, or 0/1 for a toggle."""
        if self.toggle:
            return 1.0 if value > 0.5 else 0.0
        return value

    def from_midi(self, value: int) -> float:
        """A 0..127 controller value -> the knob value."""
        if self.toggle:
            return 1.0 if value >= 64 else 0.0
        return self.lo + (self.hi - self.lo) * value / 127.0


ALL: tuple[Knob, ...] = (
    Knob("zone_size", 0.0, "column", 1,
         "zone size: half-width of the blurred band on the perceptual frequency axis (0 = no blur, "
         "1 = everything)",
         "half-width of the zone on the perceptual axis (linear below 250 Hz, log above; 0..1 = 0 Hz to the top "
         "bin), soft-edged; the rows under it are resampled; 0 = nothing changes",
         "zone", metavar="S"),
    Knob("temperature", 0.5, "column", 74,
         "temperature: how far codes wander from the input's (T = 4 t^2; 0 = the most probable code); "
         "variety, not level",
         "T = `4 * t**2` (NB is over-confident: held-out likelihood peaks near T = 2, t = 0.7); "
         "T = 0 takes the most probable code",
         "temp", metavar="T"),
    Knob("centre", 0.5, "column", 71,
         "zone centre on the perceptual frequency axis: 0.1 ~ 150 Hz, 0.2 ~ 370 Hz, 0.45 ~ 1.7 kHz, 0.75 ~ 7.4 kHz",
         "`250 Hz * (96.4**centre - 1)` at 48 kHz (0.2 ~ 370 Hz, 0.45 ~ 1.7 kHz, 0.75 ~ 7.4 kHz)",
         "ctr", metavar="C", aliases=("--center",)),
    Knob("mix", 1.0, "sample", 91,
         "dry/wet (1 = fully wet)",
         "dry/wet, equal-gain crossfade on the latency-aligned dry signal",
         "mix", metavar="M"),
    Knob("bypass", 0.0, "sample", 80,
         "bypass (> 0.5 = on, crossfaded)",
         "> 0.5 = bypass (crossfaded, no click)",
         "byp", metavar="B", toggle=True),
    Knob("detail", 1.0, "column", 75,
         "how much of the input's own spectral detail the output keeps "
         "(1 = untouched outside what the blur changes, 0 = the codec's resynthesis)",
         "per code column, in log-magnitude at the model's bins: "
         "`out = dec(b) + detail * (L_in - dec(c))` (c = the encoder's codes, b = after the "
         "blur); 1 with zone 0 = the input, delayed; 0 = the codec's resynthesis, its level held "
         "to the input's in each of four bands, frame by frame",
         "detail", metavar="D"),
    Knob("scale", 0.0, "column", 76,
         "which codemap the zone resamples (codec v2): off = micro (fine grain), "
         "on (> 0.5) = macro (broad envelope)",
         "> 0.5 = the zone resamples the **macro** map (5 rows: the broad envelope), else micro level 0 "
         "(20 rows: fine grain); resampled cells drop their finer micro levels (docs/CODEC.md). No effect "
         "on a bundle without a macro map",
         "scale", metavar="X", toggle=True),
    Knob("smear", 0.0, "column", 77,
         "time smear: how much the zone is smeared in time (0 = off; 1 = attacks soften and their "
         "energy lands in the next ~150 ms, like a short spectral reverb)",
         "per bin of the zone, its power moves towards a 150 ms one-pole of itself by "
         "`smear * zone weight`: the energy over a stretch is kept, attacks soften, tails fill "
         "(a one-shot needs room for its tail); 0 = off",
         "smear", metavar="A"),
)

NAMES: tuple[str, ...] = tuple(k.name for k in ALL)
BY_NAME: dict[str, Knob] = {k.name: k for k in ALL}
COLUMN: tuple[Knob, ...] = tuple(k for k in ALL if k.smoothing == "column")
SAMPLE: tuple[Knob, ...] = tuple(k for k in ALL if k.smoothing == "sample")
TOGGLES: tuple[str, ...] = tuple(k.name for k in ALL if k.toggle)

assert len(BY_NAME) == len(ALL), "knob names must be unique"
assert len({k.cc for k in ALL}) == len(ALL), "default CCs must be unique"


# ---------------------------------------------------------------- what the values mean
# Every place that turns a knob value into a temperature or a frequency calls these
# (engine, offline blur, view, report, docs).

#: T at the top of the temperature knob. Naive Bayes counts correlated neighbours as
#: independent evidence, so it is over-confident: held-out likelihood is best near T = 2
#: (causal) to 3 (full neighbourhood); the knob reaches past that, into the wild.
T_KNOB_MAX = 4.0
#: Below this, T counts as 0 (argmax): 1/T would overflow float32 logits.
T_MIN = 1e-6


def knob_to_temperature(t: float) -> float:
    """Temperature knob 0..1 -> T = T_KNOB_MAX * t**2; T < T_MIN (or NaN) -> 0."""
    T = T_KNOB_MAX * float(t) ** 2
    return T if T >= T_MIN else 0.0


def centre_hz(centre: float, f_max: float) -> float:
    """Centre knob 0..1 -> Hz on the perceptual knob axis (``vqblur.common.freqaxis``):
    0.1 ~ 150 Hz, 0.2 ~ 370 Hz, 0.5 ~ 2.2 kHz at 48 kHz."""
    from vqblur.common.freqaxis import KNOB_AXIS_BREAK_HZ, warp_hz

    return float(warp_hz(min(max(float(centre), 0.0), 1.0), KNOB_AXIS_BREAK_HZ, f_max))


def knob_axis_position(f_hz, f_max: float):
    """Hz -> position on the knob axis (0..1 over 0 Hz .. ``f_max``)."""
    from vqblur.common.freqaxis import KNOB_AXIS_BREAK_HZ, unwarp_hz

    return unwarp_hz(f_hz, KNOB_AXIS_BREAK_HZ, f_max)


def knob(name: str) -> Knob:
    """The declaration of ``name``; ValueError naming the known knobs."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown knob '{name}'; knobs are {', '.join(NAMES)}") from None


def as_float(v) -> float:
    """float(v); an integer too large for a float becomes +-inf (then refused as out of range)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def is_number(v) -> bool:
    """A real number (not a bool, not NaN)."""
    import numbers

    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    return not math.isnan(as_float(v))


def check_value(name: str, v, where: str = "") -> float:
    """Validate a knob value from a file (preset, automation): a number within the knob's range.

    Raises ValueError with a one-line message (``where`` names the place: file, key) for an
    unknown knob, a non-number, NaN or a value out of range. Returns the float.
    """
    k = BY_NAME.get(name)
    at = f"{where}: " if where else ""
    if k is None:
        raise ValueError(f"{at}unknown knob '{name}'; knobs are {', '.join(NAMES)}")
    if not is_number(v):
        r = repr(v)
        r = r if len(r) <= 40 else r[:37] + "..."
        raise ValueError(f"{at}'{name}' must be a number in {k.lo:g}..{k.hi:g}, got {r}")
    f = as_float(v)
    if not k.lo <= f <= k.hi:
        raise ValueError(f"{at}'{name}' = {v!r} is out of range {k.lo:g}..{k.hi:g}")
    return f


def clamp(name: str, v) -> float:
    """Params' rule: a number, clamped to the range (NaN and non-numbers: ValueError)."""
    k = BY_NAME[name]
    if isinstance(v, bool) or not is_number(v):
        raise ValueError(f"knob {name} must be a number in {k.lo:g}..{k.hi:g}, got {v!r}")
    return min(k.hi, max(k.lo, as_float(v)))


def default_cc_map() -> dict[int, str]:
    """``{cc: knob name}``: the declared default CCs (presets/controllers/generic.toml)."""
    return {k.cc: k.name for k in ALL}


# ---------------------------------------------------------------------------------- CLI
def unit_type(k: Knob) -> Callable[[str], float]:
    """argparse ``type=`` for a knob flag: one clear line on a bad value."""

    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{k.flag} must be a number in {k.lo:g}..{k.hi:g}, got {s!r}") from None
        if not k.lo <= v <= k.hi:  # NaN too
            raise argparse.ArgumentTypeError(f"{k.flag} must be in {k.lo:g}..{k.hi:g}, got {v}")
        return v

    return conv


def add_knob_arguments(parser: argparse.ArgumentParser, knobs: Iterable[Knob] = ALL,
                       defaults: dict[str, float] | None = None,
                       default_note: str = "default: the preset's, else {default:g}") -> None:
    """One ``--<knob>`` option per declared knob (dest = the knob name).

    ``defaults``: per-knob argparse defaults (a command's own values); knobs not in it
    default to None, meaning "not given" (the preset / Params default applies).
    """
    g = parser.add_argument_group("knobs (all 0..1; docs/ARCHITECTURE.md \"Knobs\")")
    for k in knobs:
        d = None if defaults is None else defaults.get(k.name)
        note = f"default {d:g}" if d is not None else default_note.format(default=k.default)
        g.add_argument(k.flag, *k.aliases, dest=k.name, type=unit_type(k), default=d,
                       metavar=k.metavar, help=f"{k.help} ({note})")


def given_knobs(args: argparse.Namespace, knobs: Iterable[Knob] = ALL) -> dict[str, float]:
    """The knob values given on the command line (``{name: value}``, None left out)."""
    out = {}
    for k in knobs:
        v = getattr(args, k.name, None)
        if v is not None:
            out[k.name] = float(v)
    return out


# ------------------------------------------------------------------------ status and docs
def status_text(values: dict[str, float]) -> str:
    """The live status line's knob part: ``zone 0.25 temp 0.50 ... byp off | blur on``."""
    parts = []
    for k in ALL:
        v = values.get(k.name)
        if v is None:
            parts.append(f"{k.label} -")
        elif k.toggle:
            parts.append(f"{k.label} {'on' if v > 0.5 else 'off'}")
        else:
            parts.append(f"{k.label} {v:.2f}")
    zone = values.get("zone_size")
    blur = "blur off" if zone is not None and zone <= 0.0 else "blur on"
    return " ".join(parts) + " " + blur


def docs_table() -> str:
    """The Markdown table of knobs in README.md / docs/ARCHITECTURE.md (between the markers
    ``<!-- knobs:begin -->`` and ``<!-- knobs:end -->``)."""
    lines = ["| knob | default | smoothing | CC | mapping |", "|---|---|---|---|---|"]
    for k in ALL:
        sm = "per code column" if k.smoothing == "column" else "per sample"
        lines.append(f"| `{k.name}` | {k.default:g} | {sm} | {k.cc} | {k.mapping} |")
    return "\n".join(lines)


_DOC_TABLE = re.compile(r"(<!-- knobs:begin[^>]*-->\n)(.*?)(\n<!-- knobs:end -->)", re.S)


def write_docs_tables(paths: Iterable[str | Path]) -> list[Path]:
    """Rewrite the knobs table between the markers in each file; returns the files changed."""
    changed = []
    for p in map(Path, paths):
        text = p.read_text(encoding="utf-8")
        new = _DOC_TABLE.sub(lambda m: m.group(1) + docs_table() + m.group(3), text)
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed.append(p)
    return changed


if __name__ == "__main__":  # python -m vqblur.engine.knobs [FILE ...]: regenerate the docs tables
    import sys

    root = Path(__file__).resolve().parent.parent
    files = sys.argv[1:] or [root / "README.md", root / "docs" / "ARCHITECTURE.md"]
    for f in write_docs_tables(files):
        print(f"rewrote the knobs table in {f}")
