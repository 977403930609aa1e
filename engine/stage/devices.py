"""Audio devices for the live stage: PortAudio (through sounddevice) loaded once, devices listed
and found by index or by a piece of their name, and PortAudio's JACK client named.

Nothing here runs while audio plays: these are called before the stream opens.
"""

from __future__ import annotations

from vqblur.common.errors import UserError


def sd():
    """The ``sounddevice`` module; a missing PortAudio library is a :class:`UserError`."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise UserError(f"cannot load the PortAudio library for audio I/O ({exc}); "
                        "install libportaudio2") from None
    return sounddevice


def hostapi_name(sd, dev: dict) -> str:
    """The PortAudio host API of device ``dev`` (``"JACK Audio Connection Kit"``, ...)."""
    try:
        return sd.query_hostapis(dev["hostapi"])["name"]
    except Exception:
        return "?"


def is_jack(sd, dev: dict) -> bool:
    """True when device ``dev`` is on PortAudio's JACK host API."""
    return "jack" in hostapi_name(sd, dev).lower()


def describe_devices() -> str:
    """All audio devices with their host API and channel counts (for --list-devices)."""
    s = sd()
    devices = s.query_devices()
    if len(devices) == 0:
        return no_device_message(s)
    lines = []
    try:
        din, dout = s.default.device
    except Exception:
        din = dout = -1
    for i, d in enumerate(devices):
        mark = ("<" if i == din else " ") + (">" if i == dout else " ")
        lines.append(
            f"{mark} [{i}] {d['name']}  ({hostapi_name(s, d)}; "
            f"{d['max_input_channels']} in, {d['max_output_channels']} out; "
            f"default {d['default_samplerate']:g} Hz)"
        )
    lines.append("   < default input, > default output")
    return "\n".join(lines)


def no_device_message(s=None) -> str:
    s = s or sd()
    try:
        apis = ", ".join(a["name"] for a in s.query_hostapis()) or "none"
    except Exception:
        apis = "unknown"
    return ("no audio device found (PortAudio host APIs: " + apis + "). Connect an audio "
            "interface, or start a JACK server (e.g. `jackd -d alsa` or `jackd -d dummy`) "
            "before running `vqblur live`.")


def find_device(spec: str | int | None, kind: str) -> int | None:
    """Resolve a device index from an index or a name substring; ``kind`` is input/output.

    A substring is matched case-insensitively against "name (host API)"; an exact name
    wins over a substring match. Unknown names list what exists.
    """
    s = sd()
    devices = s.query_devices()
    if len(devices) == 0:
        raise UserError(no_device_message(s))
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    usable = [(i, d) for i, d in enumerate(devices) if d[key] > 0]
    if not usable:
        raise UserError(f"no audio {kind} device; devices:\n{describe_devices()}")
    if spec is None or spec == "":
        default = s.default.device[0 if kind == "input" else 1]
        if default is None or default < 0:
            return usable[0][0]
        return int(default)
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        if not 0 <= idx < len(devices):
            raise UserError(f"no audio device {idx}; devices:\n{describe_devices()}")
        if devices[idx][key] <= 0:
            raise UserError(f"audio device [{idx}] {devices[idx]['name']} has no {kind} channels; "
                            f"devices:\n{describe_devices()}")
        return idx
    needle = text.lower()
    exact = [i for i, d in usable if d["name"].lower() == needle]
    if exact:
        return exact[0]
    subs = [i for i, d in usable if needle in f"{d['name']} ({hostapi_name(s, d)})".lower()]
    if subs:
        return subs[0]
    raise UserError(f"no audio {kind} device matches '{spec}'; devices:\n{describe_devices()}")


def set_jack_client_name(name: str) -> bool:
    """Name PortAudio's JACK client (its ports become ``<name>:in_1``, ``<name>:out_1``).

    PortAudio reads the name when it initialises, so this re-initialises PortAudio; call it
    before opening any stream. Returns False when the PortAudio build has no JACK API.
    """
    import ctypes

    s = sd()
    try:
        lib = ctypes.CDLL(s._libname)
        fn = lib.PaJack_SetClientName
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_char_p]
    # PortAudio keeps the pointer: keep the bytes alive for the life of the process.
    buf = ctypes.create_string_buffer(name.encode())
    _JACK_NAME_KEEPALIVE.append(buf)
    if fn(buf) != 0:
        return False
    s._terminate()
    s._initialize()
    return True


_JACK_NAME_KEEPALIVE: list = []
