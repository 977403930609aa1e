"""MIDI knobs for the live path: python-rtmidi input, controller maps, MIDI learn.

How it fits together
--------------------
* :class:`MidiInput` opens one rtmidi input (a hardware/software port chosen by index or
  name substring, or a virtual port of our own). rtmidi queues incoming messages in C++
  (inside the JACK process cycle for JACK MIDI; no Python runs there); a small poller
  thread drains the queue every 2 ms and only stores numbers into preallocated numpy
  arrays: the latest value of every (channel, CC), the event counter
  at which it last arrived, and a press counter for buttons. It never allocates a
  buffer, takes a lock or raises; everything it does not understand is counted and
  ignored (SysEx, running-status/stray data bytes, out-of-range data, notes and other
  channel messages, system messages, CCs no knob is mapped to).
* A :class:`ControllerMap` (TOML in ``presets/controllers/``) names which CC (on which
  channel, or any channel: *omni*) drives each knob.
* :class:`KnobReader` turns the CC snapshot into knob values in 0..1, once per audio
  block. A knob keeps its preset value until its control is first moved.
* :func:`learn` assigns each knob to the next control that moves.

Knob values are scaled ``cc / 127``. A map entry with ``toggle = true`` (for momentary
buttons, e.g. bypass) flips between 0 and 1 on every press (a value >= 64 after < 64).
The knob names, and which knobs are switches (``--learn`` binds those as toggles), come from
the declaration in :mod:`vqblur.engine.knobs`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from vqblur.engine import knobs as _knobs
from vqblur.common.errors import PresetError, UserError

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as _toml  # type: ignore[no-redef]

KNOBS: tuple[str, ...] = _knobs.NAMES  # declared once, in vqblur.engine.knobs

#: shipped controller maps
#: rtmidi's input queue (messages): room for ~1 s of a 10,000 message/s flood.
QUEUE_SIZE = 16384
#: The poller drains at most this many messages, then sleeps POLL_INTERVAL_S when idle.
POLL_BATCH = 4096
POLL_INTERVAL_S = 0.002

CONTROLLERS_DIR = Path(str(resources.files("vqblur.presets") / "controllers"))

_API_NAMES = {
    "jack": "API_UNIX_JACK",
    "alsa": "API_LINUX_ALSA",
    "coremidi": "API_MACOSX_CORE",
    "winmm": "API_WINDOWS_MM",
}


# =========================================================================== maps
@dataclass(frozen=True)
class Binding:
    """One knob's control: ``cc`` on ``channel`` (0-based, None = any channel)."""

    cc: int
    channel: int | None = None
    toggle: bool = False


@dataclass
class ControllerMap:
    name: str
    bindings: dict[str, Binding] = field(default_factory=dict)
    path: str = "<memory>"
    source: str = ""

    def mapped_mask(self) -> np.ndarray:
        """``[16, 128]`` bool: which (channel, CC) pairs drive a knob."""
        mask = np.zeros((16, 128), dtype=bool)
        for b in self.bindings.values():
            if b.channel is None:
                mask[:, b.cc] = True
            else:
                mask[b.channel, b.cc] = True
        return mask

    def to_toml(self) -> str:
        lines = [f'name = "{self.name}"']
        if self.source:
            lines.append(f'source = "{self.source}"')
        lines.append('channel = "omni"')
        lines.append("")
        lines.append("[knobs]")
        for knob in KNOBS:
            b = self.bindings.get(knob)
            if b is None:
                continue
            parts = [f"cc = {b.cc}"]
            if b.channel is not None:
                parts.append(f"channel = {b.channel + 1}")
            if b.toggle:
                parts.append("toggle = true")
            lines.append(f"{knob} = {{ {', '.join(parts)} }}")
        return "\n".join(lines) + "\n"


def _parse_channel(value, path: str, key: str) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "omni":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        raise PresetError(f"{path}: key '{key}': MIDI channel must be 1..16 or \"omni\", got {value!r}")
    return value - 1


def parse_controller_map(data: dict, path: str = "<memory>") -> ControllerMap:
    """Build a map from parsed TOML; raises PresetError naming the file and the key."""
    if not isinstance(data, dict):
        raise PresetError(f"{path}: a controller map must be a TOML table")
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str):
        raise PresetError(f"{path}: key 'name': expected a string, got {name!r}")
    default_channel = _parse_channel(data.get("channel", "omni"), path, "channel")
    knobs = data.get("knobs")
    if knobs is None:
        raise PresetError(f"{path}: missing key 'knobs' (a table: knob name = CC number)")
    if not isinstance(knobs, dict):
        raise PresetError(f"{path}: key 'knobs': expected a table, got {type(knobs).__name__}")
    unknown_top = set(data) - {"name", "channel", "knobs", "source", "notes", "device"}
    if unknown_top:
        raise PresetError(f"{path}: unknown key '{sorted(unknown_top)[0]}' (known: name, channel, knobs, source, notes, device)")
    bindings: dict[str, Binding] = {}
    for knob, spec in knobs.items():
        key = f"knobs.{knob}"
        if knob not in KNOBS:
            raise PresetError(f"{path}: key '{key}': unknown knob (known: {', '.join(KNOBS)})")
        channel = default_channel
        toggle = False
        if isinstance(spec, dict):
            extra = set(spec) - {"cc", "channel", "toggle"}
            if extra:
                raise PresetError(f"{path}: key '{key}.{sorted(extra)[0]}': unknown (known: cc, channel, toggle)")
            if "cc" not in spec:
                raise PresetError(f"{path}: key '{key}': missing 'cc'")
            if "channel" in spec:
                channel = _parse_channel(spec["channel"], path, f"{key}.channel")
            toggle = spec.get("toggle", False)
            if not isinstance(toggle, bool):
                raise PresetError(f"{path}: key '{key}.toggle': expected true/false, got {toggle!r}")
            cc = spec["cc"]
            cc_key = f"{key}.cc"
        else:
            cc = spec
            cc_key = key
        if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc <= 127:
            raise PresetError(f"{path}: key '{cc_key}': CC number must be an integer 0..127, got {cc!r}")
        bindings[knob] = Binding(cc=cc, channel=channel, toggle=toggle)
    seen: dict[tuple, str] = {}
    for knob, b in bindings.items():
        k = (b.channel, b.cc)
        if k in seen:
            raise PresetError(f"{path}: key 'knobs.{knob}': CC {b.cc} is already used by '{seen[k]}'")
        seen[k] = knob
    return ControllerMap(name=name, bindings=bindings, path=path, source=str(data.get("source", "")))


def list_controller_maps() -> list[str]:
    return sorted(p.stem for p in CONTROLLERS_DIR.glob("*.toml"))


def load_controller_map(name_or_path: str | os.PathLike) -> ControllerMap:
    """A shipped map by name (``korg_nanokontrol2``) or any TOML file by path."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if not (s.endswith(".toml") or os.sep in s or p.exists()):
        p = CONTROLLERS_DIR / f"{s}.toml"
        if not p.exists():
            raise PresetError(
                f"unknown controller map '{s}' (shipped: {', '.join(list_controller_maps()) or 'none'}; "
                "or give a path to a .toml file)"
            )
    if not p.is_file():
        raise PresetError(f"{p}: controller map file not found")
    try:
        data = _toml.loads(p.read_text(encoding="utf-8"))
    except _toml.TOMLDecodeError as exc:
        raise PresetError(f"{p}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{p}: cannot read: {exc}") from None
    return parse_controller_map(data, str(p))


def save_controller_map(cmap: ControllerMap, path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(cmap.to_toml(), encoding="utf-8")
    return p


# =========================================================================== input
def _rtmidi():
    try:
        import rtmidi
    except ImportError as exc:  # pragma: no cover
        raise UserError(f"python-rtmidi is not installed ({exc})") from None
    return rtmidi


def resolve_api(api: str | int | None) -> int:
    rtmidi = _rtmidi()
    if api is None or api == "auto":
        return rtmidi.API_UNSPECIFIED
    if isinstance(api, int):
        return api
    attr = _API_NAMES.get(str(api).lower())
    if attr is None or not hasattr(rtmidi, attr):
        raise UserError(f"unknown MIDI API '{api}' (known: auto, {', '.join(_API_NAMES)})")
    value = getattr(rtmidi, attr)
    if value not in rtmidi.get_compiled_api():
        raise UserError(f"MIDI API '{api}' is not compiled into this python-rtmidi")
    return value


@dataclass(frozen=True)
class MidiApiPorts:
    """One MIDI API's input ports, or why the API could not be opened."""

    api: str  #: rtmidi's display name ("ALSA", "Jack")
    ports: list[str]
    unavailable: str | None = None  #: the reason (None: the API answered, with ``ports``)


@contextlib.contextmanager
def quiet_native_stderr():
    """File descriptor 2 goes to /dev/null for the block: ALSA and JACK print their own
    diagnostics there from C ("ALSA lib seq_hw.c:466 ...", "Cannot connect to server socket",
    "JackShmReadWritePtr::~JackShmReadWritePtr ..."); rtmidi's exception already says what
    failed. Python's own stderr is flushed first and comes back after."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (a daemon) or no sys.stderr
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _reason(exc: BaseException) -> str:
    """rtmidi's "MidiInAlsa::initialize: error creating ALSA sequencer client object." ->
    "error creating ALSA sequencer client object"."""
    import re

    text = re.sub(r"^\w+::\w+:\s*", "", str(exc).strip()).rstrip(".")
    return text or type(exc).__name__


def list_midi_ports(api: str | int | None = None) -> list[MidiApiPorts]:
    """The input ports of the given API, or of every compiled-in API, one :class:`MidiApiPorts`
    each; an API that cannot be opened (no ALSA sequencer, no JACK server) says why, and the
    libraries' own stderr chatter is kept off the terminal."""
    rtmidi = _rtmidi()
    apis = [resolve_api(api)] if api not in (None, "auto") else list(rtmidi.get_compiled_api())
    out = []
    for a in apis:
        name = rtmidi.get_api_display_name(a)
        with quiet_native_stderr():
            try:
                m = rtmidi.MidiIn(a, "vqblur-list")
                try:
                    ports, why = list(m.get_ports()), None
                finally:
                    m.delete()
            except Exception as exc:  # rtmidi raises its own SystemError subclasses
                ports, why = [], _reason(exc)
        out.append(MidiApiPorts(name, ports, why))
    return out


def describe_midi_listing(listing: list[MidiApiPorts]) -> list[str]:
    """The lines `vqblur live --list-midi` prints: each API's ports as ``[i] name``, or one
    "no MIDI ports (reason)" line."""
    lines = []
    for entry in listing:
        if entry.unavailable is not None:
            lines.append(f"MIDI input ports ({entry.api}): no MIDI ports "
                         f"({entry.api} is not available here: {entry.unavailable})")
        elif not entry.ports:
            lines.append(f"MIDI input ports ({entry.api}): no MIDI ports (none connected)")
        else:
            lines.append(f"MIDI input ports ({entry.api}):")
            lines += [f"  [{i}] {name}" for i, name in enumerate(entry.ports)]
    if listing and all(e.unavailable is not None for e in listing):
        lines.append("  (MIDI needs the ALSA sequencer, /dev/snd/seq, or a running JACK server; "
                     "OSC knobs, --osc PORT, need neither)")
    elif not any(e.ports for e in listing):
        lines.append("  (plug in a controller, or use --midi-virtual NAME to open a port that "
                     "other programs can send to)")
    return lines


class MidiInput:
    """An rtmidi input whose callback keeps the latest value of every CC.

    Attributes read by other threads (all written only by the callback):
    ``cc_value[ch, cc]`` (-1 = never received), ``cc_seq[ch, cc]`` (the value of
    ``events`` when it last arrived), ``presses[ch, cc]`` (rising edges through 64),
    and the counters ``received``, ``events`` (valid CCs), ``ignored`` (all ignored)
    with its parts ``sysex``, ``malformed``, ``unmapped``, ``other``.
    """

    def __init__(self, api: str | int | None = None, client_name: str = "vqblur") -> None:
        self.cc_value = np.full((16, 128), -1, dtype=np.int16)
        self.cc_seq = np.zeros((16, 128), dtype=np.int64)
        self.presses = np.zeros((16, 128), dtype=np.int64)
        self.mapped = np.ones((16, 128), dtype=bool)  # until a map says otherwise
        self.received = 0
        self.events = 0
        self.ignored = 0
        self.sysex = 0
        self.malformed = 0
        self.unmapped = 0
        self.other = 0
        self.callback_errors = 0
        self.port_name = ""
        #: called (on the poller thread) after each batch of messages; e.g. a KnobPump's notify
        self.on_message = None
        self._api = resolve_api(api)
        self._client_name = client_name
        self._midi = None

    # ------------------------------------------------------------------ setup
    def _new(self):
        rtmidi = _rtmidi()
        try:
            midi = rtmidi.MidiIn(self._api, self._client_name, queue_size_limit=QUEUE_SIZE)
        except Exception as exc:
            raise UserError(f"cannot open MIDI input ({exc})") from None
        # Receive SysEx/timing/active-sensing too, so they are counted, not silently dropped.
        midi.ignore_types(sysex=False, timing=False, active_sense=False)
        return midi

    def open_port(self, port: int | str) -> str:
        midi = self._new()
        ports = list(midi.get_ports())
        index = None
        if isinstance(port, int) or (isinstance(port, str) and port.strip().isdigit()):
            index = int(port)
            if not 0 <= index < len(ports):
                desc = _describe_ports(ports, midi)
                midi.delete()
                raise UserError(f"no MIDI input port {index}; {desc}")
        else:
            needle = str(port).lower()
            matches = [i for i, p in enumerate(ports) if needle in p.lower()]
            if not matches:
                desc = _describe_ports(ports, midi)
                midi.delete()
                raise UserError(f"no MIDI input port matches '{port}'; {desc}")
            index = matches[0]
        try:
            midi.open_port(index, f"{self._client_name} in")
        except Exception as exc:
            midi.delete()
            raise UserError(f"cannot open MIDI input port '{ports[index]}': {exc}") from None
        self._midi = midi
        self.port_name = ports[index]
        self._start_poller()
        return self.port_name

    def open_virtual(self, name: str = "vqblur in") -> str:
        midi = self._new()
        try:
            midi.open_virtual_port(name)
        except Exception as exc:
            midi.delete()
            raise UserError(f"cannot create virtual MIDI port '{name}': {exc}") from None
        self._midi = midi
        self.port_name = name
        self._start_poller()
        return name

    def _start_poller(self) -> None:
        """Drain rtmidi's queue from an ordinary thread. No Python callback is installed: with
        one, rtmidi would call into Python (and wait for the GIL) inside the JACK process
        cycle, making the whole audio graph late during a MIDI flood."""
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, args=(self._midi,),
                                        name="vqblur-midi-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self, midi) -> None:
        get = midi.get_message
        stop = self._stop
        while not stop.is_set():
            n = 0
            while n < POLL_BATCH:
                try:
                    event = get()
                except Exception:
                    self.callback_errors += 1
                    break
                if event is None:
                    break
                self._callback(event)
                n += 1
            if n and self.on_message is not None:
                self.on_message()
            if n < POLL_BATCH:
                stop.wait(POLL_INTERVAL_S)

    @property
    def api_name(self) -> str:
        if self._midi is None:
            return ""
        return _rtmidi().get_api_display_name(self._midi.get_current_api())

    def set_map(self, cmap: ControllerMap | None) -> None:
        """Count CCs that no knob uses as ignored ('unmapped')."""
        self.mapped = cmap.mapped_mask() if cmap is not None else np.ones((16, 128), dtype=bool)

    def close(self) -> None:
        poller = getattr(self, "_poller", None)
        if poller is not None:
            self._stop.set()
            poller.join(timeout=2.0)
            self._poller = None
        midi, self._midi = self._midi, None
        if midi is not None:
            try:
                midi.close_port()
            finally:
                midi.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --------------------------------------------------------------- callback
    def _callback(self, event, data=None) -> None:
        """One (message, delta) event from the poller: store CCs, count the rest. Never raises."""
        try:
            self.received += 1
            msg = event[0]
            n = len(msg)
            if n == 0:
                self.malformed += 1
                self.ignored += 1
                return
            status = msg[0]
            if status < 0x80 or status > 0xFF:  # running status / stray data byte
                self.malformed += 1
                self.ignored += 1
                return
            if status >= 0xF0:
                if status == 0xF0:
                    self.sysex += 1
                else:
                    self.other += 1  # system common / real-time
                self.ignored += 1
                return
            if status & 0xF0 != 0xB0:
                self.other += 1  # notes, pitch bend, program change ...
                self.ignored += 1
                return
            if n != 3:
                self.malformed += 1
                self.ignored += 1
                return
            cc = msg[1]
            value = msg[2]
            if not (0 <= cc <= 127 and 0 <= value <= 127):
                self.malformed += 1
                self.ignored += 1
                return
            ch = status & 0x0F
            prev = self.cc_value[ch, cc]
            self.cc_value[ch, cc] = value
            if value >= 64 and prev < 64:
                self.presses[ch, cc] += 1
            # the sequence number first, then the count: a reader that sees ``events`` reach k
            # (another thread) also sees the k-th CC's value and sequence number
            seq = self.events + 1
            self.cc_seq[ch, cc] = seq
            self.events = seq
            if not self.mapped[ch, cc]:
                self.unmapped += 1
                self.ignored += 1
        except Exception:  # never let an exception reach rtmidi's thread
            try:
                self.callback_errors += 1
                self.ignored += 1
            except Exception:
                pass

    def counters(self) -> dict[str, int]:
        return {
            "received": self.received, "cc": self.events, "ignored": self.ignored,
            "sysex": self.sysex, "malformed": self.malformed, "unmapped": self.unmapped,
            "other": self.other, "callback_errors": self.callback_errors,
        }


def _describe_ports(ports: list[str], midi) -> str:
    api = _rtmidi().get_api_display_name(midi.get_current_api())
    if not ports:
        return f"there are no MIDI input ports ({api})"
    listing = "; ".join(f"[{i}] {p}" for i, p in enumerate(ports))
    return f"MIDI input ports ({api}): {listing}"


# =========================================================================== knobs
class KnobReader:
    """Knob values (0..1) from a :class:`MidiInput` snapshot and a :class:`ControllerMap`.

    ``read()`` is cheap (a few numpy lookups) and is called once per audio block by the
    worker. Knobs whose control has not moved yet keep their default (preset) value.
    """

    def __init__(self, midi: MidiInput | None, cmap: ControllerMap | None,
                 defaults: dict[str, float] | None = None) -> None:
        self.midi = midi
        self.cmap = cmap
        self.defaults = {k: float(v) for k, v in (defaults or {}).items() if k in KNOBS}
        self.values = dict(self.defaults)
        self._bind = []
        if cmap is not None:
            for knob, b in cmap.bindings.items():
                self._bind.append((knob, b))
        self._toggle_base: dict[str, int] = {}
        if midi is not None:
            midi.set_map(cmap)
            for knob, b in self._bind:
                if b.toggle:
                    self._toggle_base[knob] = self._presses(b)

    def _presses(self, b: Binding) -> int:
        m = self.midi
        if b.channel is None:
            return int(m.presses[:, b.cc].sum())
        return int(m.presses[b.channel, b.cc])

    def read(self) -> dict[str, float]:
        m = self.midi
        if m is None:
            return self.values
        for knob, b in self._bind:
            if b.toggle:
                flips = self._presses(b) - self._toggle_base[knob]
                if flips:
                    base = 1.0 if self.defaults.get(knob, 0.0) > 0.5 else 0.0
                    self.values[knob] = 1.0 - base if flips % 2 else base
                continue
            if b.channel is None:
                col = m.cc_seq[:, b.cc]
                ch = int(col.argmax())
                if col[ch] == 0:
                    continue
            else:
                ch = b.channel
            v = int(m.cc_value[ch, b.cc])
            if v >= 0:
                self.values[knob] = v / 127.0
        return self.values


# =========================================================================== learn
def learn(midi: MidiInput, knobs: Iterable[str] = KNOBS,
          prompt: Callable[[str], None] | None = None, timeout_s: float = 60.0,
          settle_s: float = 0.3, toggle: Iterable[str] = _knobs.TOGGLES,
          should_stop: Callable[[], bool] | None = None) -> ControllerMap:
    """Assign each knob to the next control (channel, CC) that moves after its prompt.

    A control already assigned to an earlier knob is skipped, so turning the previous
    knob a little further does not steal the next assignment. ``settle_s`` waits after
    each assignment so the tail of one movement is not taken for the next knob.
    Raises UserError if nothing moves within ``timeout_s``.
    """
    if prompt is None:
        def prompt(text: str) -> None:
            print(text, file=sys.stderr, flush=True)
    toggle = set(toggle)
    taken: set[tuple[int, int]] = set()
    bindings: dict[str, Binding] = {}
    midi.set_map(None)
    for knob in knobs:
        prompt(f"learn: move the control for '{knob}' ...")
        time.sleep(settle_s)
        seq0 = midi.events
        deadline = time.monotonic() + timeout_s
        found = None
        while found is None:
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise UserError(f"MIDI learn: no control moved within {timeout_s:g} s for '{knob}'")
            if midi.events > seq0:
                seq = midi.cc_seq.copy()
                seq[seq <= seq0] = np.iinfo(np.int64).max
                for ch, cc in taken:
                    seq[ch, cc] = np.iinfo(np.int64).max
                flat = int(seq.argmin())
                if seq.flat[flat] != np.iinfo(np.int64).max:
                    found = divmod(flat, 128)
                    break
            time.sleep(0.01)
        taken.add(found)
        ch, cc = found
        bindings[knob] = Binding(cc=cc, channel=ch, toggle=knob in toggle)
        prompt(f"learn: '{knob}' = CC {cc} on channel {ch + 1}")
    return ControllerMap(name="learned", bindings=bindings, path="<learned>",
                         source="vqblur live --learn")


def learned_map_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vqblur" / "controllers" / "learned.toml"
