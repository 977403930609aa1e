"""OSC knobs for the live path: a UDP server on its own thread that swaps knob snapshots.

Addresses (the knob names come from :func:`knob_names`, the one place they are read)::

    /vqblur/<knob>   one number 0..1 (float, double or int; T/F = 1/0)
    /vqblur/preset   one string: a shipped preset's name (presets/effects/<NAME>.toml), or the
                     name of the preset ``vqblur live --preset`` was given; a preset that names
                     a palette switches the palette too
    /vqblur/palette  one string: the folder of a bundle whose Naive Bayes tables the blur then
                     draws from (a palette, e.g. from ``vqblur make-bundle --palette-only``);
                     "" = the model's own tables

How it fits together
--------------------
* :class:`OscControl` binds a UDP socket (``127.0.0.1`` by default) and runs a receive thread.
  Each datagram is parsed with python-osc (``pythonosc.osc_message`` / ``osc_packet``: single
  messages and bundles; a bundle's time tag is ignored, its messages apply at once). A valid
  knob message publishes a new immutable :class:`OscSnapshot` (one attribute assignment), so a
  reader sees a whole snapshot or the previous one; a preset message publishes all the preset's
  knobs in one snapshot. Presets are loaded when the server is created, so no preset file is
  read while playing. A palette message (or a preset naming a palette) is handed to
  :attr:`OscControl.on_palette` (``vqblur live``: the audio process loads the palette on a
  thread of its own, never the worker or the audio callback, and reports the outcome in its
  status; a bad path is refused there and the current palette keeps playing).
* The worker reads the snapshot once per audio block (``vqblur.engine.stage.control.KnobMux``),
  exactly as it reads the MIDI snapshot: the audio callback never sees OSC, and the engine
  smooths OSC changes like MIDI ones.
* Everything else is counted and ignored, never raised: datagrams python-osc cannot parse, that
  are not OSC or whose size is not a multiple of 4 bytes (``malformed``), knob messages without exactly one number (``malformed``),
  numbers outside 0..1 or not finite (``out_of_range``), addresses not in the table
  (``unknown``), preset names not shipped (``bad_preset``). The kernel's own drops of
  datagrams the thread could not take in time (Linux ``SO_RXQ_OVFL``) are ``dropped_os``.

Counter invariants: ``received == applied + ignored`` and ``ignored == malformed +
out_of_range + unknown + bad_preset + errors``.
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from typing import NamedTuple

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from vqblur.common.errors import UserError

PREFIX = "/vqblur"
PRESET_ADDRESS = f"{PREFIX}/preset"
PALETTE_ADDRESS = f"{PREFIX}/palette"
#: longest palette path taken (bytes of UTF-8); a longer one is malformed
MAX_PALETTE_PATH = 1024
#: Linux SO_RXQ_OVFL: the kernel reports how many datagrams it dropped for a full socket buffer.
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
#: Ask for this much socket receive buffer (the kernel caps it at net.core.rmem_max).
RCVBUF_BYTES = 4 << 20
MAX_DATAGRAM = 65536
_TRUNCATED = b"\xff"  # stands for a datagram too large to be OSC: not a multiple of 4 -> malformed
#: The receive thread handles at most this many datagrams in a row, then sleeps POLL_INTERVAL_S:
#: at most 128,000 messages/s (about a third of a core); the kernel drops the rest of a bigger
#: flood (counted in ``dropped_os``).
POLL_BATCH = 256
POLL_INTERVAL_S = 0.002


def knob_names() -> tuple[str, ...]:
    """The knobs OSC drives: THE one place their names are read (the engine's declaration)."""
    from vqblur.engine.core import KNOBS

    return tuple(KNOBS)


def knob_address(knob: str) -> str:
    """``zone_size`` -> ``/vqblur/zone_size``."""
    return f"{PREFIX}/{knob}"


def address_table() -> list[tuple[str, str, str]]:
    """``[(address, argument, effect)]`` for every address the server understands."""
    rows = [(knob_address(k), "float 0..1", f"knob '{k}'") for k in knob_names()]
    rows.append((PRESET_ADDRESS, "string NAME", "load the shipped preset NAME (all its knobs)"))
    rows.append((PALETTE_ADDRESS, "string DIR", "blur from the Naive Bayes tables of bundle DIR "
                 "(\"\" = the model's own)"))
    return rows


class OscSnapshot(NamedTuple):
    """Immutable knob state from OSC. ``seq[i]`` is the message count at which knob i last
    changed (0 = never); ``value[i]`` its value (NaN until set)."""

    serial: int
    seq: tuple[int, ...]
    value: tuple[float, ...]


def load_shipped_presets() -> dict[str, dict[str, float]]:
    """``{preset name: knob values}`` for every shipped effect preset (read once, at start)."""
    return {name: values for name, (values, _) in _shipped_presets().items()}


def _shipped_presets() -> dict[str, tuple[dict[str, float], str | None]]:
    from vqblur.engine.presets import list_presets, load_preset

    out = {}
    for name in list_presets():
        p = load_preset(name)
        out[name] = (p.params.as_dict(), p.palette)
    return out


class OscControl:
    """A UDP OSC server on its own thread. ``snapshot`` is what the worker reads.

    ``port`` 0 picks a free port (see :attr:`port` after construction). ``presets`` maps a
    name to knob values (default: the shipped effect presets); ``palettes`` a preset name to
    the palette it names (default: the shipped presets'). :meth:`add_preset` adds one.
    ``on_palette(path)``, if set, is called on the receive thread for a palette message and
    for a preset that names a palette.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 presets: dict[str, dict[str, float]] | None = None, priority: int = 0,
                 palettes: dict[str, str] | None = None) -> None:
        self.names = knob_names()
        self._index = {knob_address(k): i for i, k in enumerate(self.names)}
        # fast path for the common message "/vqblur/<knob> ,f <float32>": its exact 8-byte tail
        self._fast = {_osc_string(knob_address(k)) + b",f\0\0": i for i, k in enumerate(self.names)}
        self.priority = int(priority)
        self.realtime = False
        if presets is None:
            shipped = _shipped_presets()
            self.presets = {k: v for k, (v, _) in shipped.items()}
            self.palettes = {k: pal for k, (_, pal) in shipped.items() if pal}
        else:
            self.presets = dict(presets)
            self.palettes = {}
        if palettes is not None:
            self.palettes.update(palettes)
        #: called (on the receive thread) with a palette path ("" = the model's own); see the
        #: class docstring. None: palette messages are counted as applied and go nowhere.
        self.on_palette = None
        self.palette_requests = 0
        n = len(self.names)
        self.snapshot = OscSnapshot(0, (0,) * n, (math.nan,) * n)
        self.received = self.applied = self.ignored = 0
        self.malformed = self.out_of_range = self.unknown = self.bad_preset = self.errors = 0
        self.dropped_os = 0
        #: called (on the receive thread) after each batch of datagrams; e.g. a KnobPump's notify
        self.on_message = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UserError(f"OSC: cannot resolve host '{host}' ({exc})") from None
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            raise UserError(f"OSC: cannot listen on UDP {host}:{port} ({exc.strerror or exc})") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        except OSError:
            pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
            self._ancillary = socket.CMSG_SPACE(4)
        except (OSError, AttributeError):
            self._ancillary = 0
        sock.settimeout(0.1)
        self._sock = sock
        self.host = host
        self.port = int(sock.getsockname()[1])

    def add_preset(self, name: str, values: dict[str, float], palette: str | None = None) -> None:
        """Make ``/vqblur/preset NAME`` load ``values`` (and switch to ``palette`` if given);
        before :meth:`start`."""
        self.presets[name] = dict(values)
        if palette:
            self.palettes[name] = palette
        else:
            self.palettes.pop(name, None)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"osc.udp://{self.host}:{self.port}"

    def start(self) -> "OscControl":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vqblur-osc", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=2.0)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> "OscControl":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ receive
    def _loop(self) -> None:
        """Wait for a datagram, then drain what is queued (up to POLL_BATCH) and sleep
        POLL_INTERVAL_S: under a flood the thread wakes (and takes the GIL from the worker)
        500 times a second, not once per message."""
        from vqblur.engine.stage.realtime import try_realtime

        # Like the live status loop: a real-time priority below the worker's, so this thread is
        # not preempted by other programs while it holds the GIL the worker and the audio
        # callback need. Its work is bounded: POLL_BATCH datagrams per POLL_INTERVAL_S.
        self.realtime = try_realtime(self.priority)
        stop = self._stop
        while not stop.is_set():
            try:
                data = self._recv(0)
            except socket.timeout:
                continue
            except OSError:
                if stop.is_set():
                    break
                time.sleep(0.01)
                continue
            n = 0
            while data is not None:
                self.handle_datagram(data)
                n += 1
                if n >= POLL_BATCH:
                    break
                try:
                    data = self._recv(socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = None
            if self.on_message is not None:
                self.on_message()
            stop.wait(POLL_INTERVAL_S)

    def _recv(self, flags: int) -> bytes:
        """One datagram; one larger than MAX_DATAGRAM comes back as ``_TRUNCATED`` (malformed)."""
        sock = self._sock
        if not self._ancillary:
            return sock.recv(MAX_DATAGRAM, flags)
        data, cmsgs, mflags, _ = sock.recvmsg(MAX_DATAGRAM, self._ancillary, flags)
        for level, kind, cdata in cmsgs:
            if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(cdata) >= 4:
                self.dropped_os = struct.unpack("I", cdata[:4])[0]
        if mflags & socket.MSG_TRUNC:
            return _TRUNCATED
        return data

    def handle_datagram(self, data: bytes) -> None:
        """Parse one UDP payload and apply or count every message in it. Never raises."""
        i = self._fast.get(data[:-4])
        if i is not None:  # "/vqblur/<knob> ,f x": no need for the general parser
            v = _F32.unpack_from(data, len(data) - 4)[0]
            if 0.0 <= v <= 1.0:
                self._publish({i: v})
            else:
                self._count_bad("out_of_range")
            return
        try:
            messages = _parse(data)
        except Exception:
            self._count_bad("malformed")
            return
        for address, params in messages:
            try:
                self._message(address, params)
            except Exception:  # defensive: a bug here must not stop the server
                self._count_bad("errors")

    def _count_bad(self, kind: str) -> None:
        self.received += 1
        self.ignored += 1
        setattr(self, kind, getattr(self, kind) + 1)

    def _message(self, address, params) -> None:
        i = self._index.get(address)
        if i is not None:
            if len(params) != 1:
                self._count_bad("malformed")
                return
            v = params[0]
            if isinstance(v, bool):
                v = 1.0 if v else 0.0
            elif not isinstance(v, (int, float)):
                self._count_bad("malformed")
                return
            try:
                v = float(v)
            except OverflowError:  # an integer too large for a float
                self._count_bad("out_of_range")
                return
            if not 0.0 <= v <= 1.0:  # NaN fails too
                self._count_bad("out_of_range")
                return
            self._publish({i: v})
            return
        if address == PRESET_ADDRESS:
            if len(params) != 1 or not isinstance(params[0], str):
                self._count_bad("malformed")
                return
            values = self.presets.get(params[0])
            if values is None:
                self._count_bad("bad_preset")
                return
            self._publish({self.names.index(k): float(v) for k, v in values.items() if k in self.names})
            pal = self.palettes.get(params[0])
            if pal:
                self._palette(pal)
            return
        if address == PALETTE_ADDRESS:
            if (len(params) != 1 or not isinstance(params[0], str) or "\0" in params[0]
                    or len(params[0].encode("utf-8", "replace")) > MAX_PALETTE_PATH):
                self._count_bad("malformed")
                return
            self.received += 1
            self.applied += 1
            self._palette(params[0])
            return
        self._count_bad("unknown")

    def _palette(self, path: str) -> None:
        self.palette_requests += 1
        cb = self.on_palette
        if cb is not None:
            cb(path)

    def _publish(self, changes: dict[int, float]) -> None:
        self.received += 1
        self.applied += 1
        old = self.snapshot
        serial = old.serial + 1
        seq = list(old.seq)
        value = list(old.value)
        for i, v in changes.items():
            seq[i] = serial
            value[i] = v
        self.snapshot = OscSnapshot(serial, tuple(seq), tuple(value))  # the swap

    # ------------------------------------------------------------------ info
    def values(self) -> dict[str, float]:
        """The knobs OSC has set so far (name -> value)."""
        s = self.snapshot
        return {k: s.value[i] for i, k in enumerate(self.names) if s.seq[i]}

    def counters(self) -> dict[str, int]:
        return {
            "received": self.received, "applied": self.applied, "ignored": self.ignored,
            "malformed": self.malformed, "out_of_range": self.out_of_range,
            "unknown": self.unknown, "bad_preset": self.bad_preset, "errors": self.errors,
            "dropped_os": self.dropped_os, "palette_requests": self.palette_requests,
        }


def _parse(data: bytes) -> list[tuple[str, list]]:
    """``[(address, params)]`` of a datagram (one message or a bundle); raises when it is not OSC.

    The size of an OSC packet is a multiple of 4 (OSC 1.0); python-osc would pad a short one
    (a float cut off entirely reads as 0.0), so a packet of another size is refused here."""
    if len(data) % 4:
        raise ValueError("OSC packet size is not a multiple of 4")
    if OscMessage.dgram_is_message(data):
        m = OscMessage(data)
        _check_length(data)
        return [(m.address, m.params)]
    if OscBundle.dgram_is_bundle(data):
        out: list[tuple[str, list]] = []
        _flatten(OscBundle(data), out, 0)
        return out
    raise ValueError("not an OSC message or bundle")


_F32 = struct.Struct(">f")


def _osc_string(s: str) -> bytes:
    """An OSC string: ASCII, NUL-terminated, padded to a multiple of 4 bytes."""
    b = s.encode("ascii") + b"\0"
    return b + b"\0" * (-len(b) % 4)


_ARG_BYTES = {"f": 4, "i": 4, "r": 4, "m": 4, "c": 4, "d": 8, "h": 8, "t": 8,
              "T": 0, "F": 0, "N": 0, "I": 0}


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _check_length(data: bytes) -> None:
    """A message whose arguments are all fixed-size must hold exactly their bytes (python-osc
    reads a missing float as 0.0)."""
    a = _pad4(data.index(b"\0") + 1)
    end = data.find(b"\0", a)
    if end < 0 or data[a:a + 1] != b",":
        return  # no type tag: python-osc's own business (no arguments)
    tags = data[a + 1:end].decode("ascii", "replace")
    if all(t in _ARG_BYTES for t in tags):
        if len(data) != _pad4(end + 1) + sum(_ARG_BYTES[t] for t in tags):
            raise ValueError("OSC message shorter or longer than its type tags")


def _flatten(bundle, out: list, depth: int) -> None:
    if depth > 8:
        raise ValueError("OSC bundles nested too deep")
    for item in bundle:
        if isinstance(item, OscBundle):
            _flatten(item, out, depth + 1)
        else:
            out.append((item.address, item.params))
