"""`vqblur live --list-midi` on a machine without MIDI: one "no MIDI ports (reason)" line per
API, nothing that looks like a port, and none of ALSA's or JACK's own stderr chatter."""

import os
import subprocess
import sys

import pytest

from vqblur.engine.stage import midi as M


def test_listing_without_midi_is_clear_and_quiet():
    # no JACK server by that name, never started for us; ALSA has a sequencer or not
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"vq-none-{os.getpid()}", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, "-m", "vqblur", "live", "--list-midi"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no "ALSA lib ...", "Cannot connect to server socket", ...
    assert "(unavailable" not in r.stdout
    lines = r.stdout.splitlines()
    jack = [ln for ln in lines if ln.startswith("MIDI input ports (Jack)")]
    assert jack == ["MIDI input ports (Jack): no MIDI ports (Jack is not available here: "
                    "JACK server not running?)"], r.stdout
    if not os.path.exists("/dev/snd/seq"):
        assert any(ln.startswith("MIDI input ports (ALSA): no MIDI ports (ALSA is not available here: ")
                   for ln in lines), r.stdout
        assert not [ln for ln in lines if ln.lstrip().startswith("[0]")], r.stdout


class _FakeMidiIn:
    def __init__(self, api, name):
        os.write(2, b"ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed\n")
        if api == 1:
            raise SystemError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")
        self.api = api

    def get_ports(self):
        return ["nanoKONTROL2 MIDI 1"] if self.api == 2 else []

    def delete(self):
        os.write(2, b"JackShmReadWritePtr::~JackShmReadWritePtr - Init not done for -1\n")


class _FakeRtmidi:
    API_UNSPECIFIED = 0
    MidiIn = _FakeMidiIn

    @staticmethod
    def get_compiled_api():
        return [1, 2, 3]

    @staticmethod
    def get_api_display_name(a):
        return {1: "ALSA", 2: "Jack", 3: "Other"}[a]


def test_reasons_ports_and_no_native_noise(monkeypatch, capfd):
    monkeypatch.setattr(M, "_rtmidi", lambda: _FakeRtmidi)
    listing = M.list_midi_ports()
    out, err = capfd.readouterr()
    assert err == "" and out == ""
    assert listing == [M.MidiApiPorts("ALSA", [], "error creating ALSA sequencer client object"),
                       M.MidiApiPorts("Jack", ["nanoKONTROL2 MIDI 1"]),
                       M.MidiApiPorts("Other", [])]
    assert M.describe_midi_listing(listing) == [
        "MIDI input ports (ALSA): no MIDI ports (ALSA is not available here: error creating ALSA "
        "sequencer client object)",
        "MIDI input ports (Jack):",
        "  [0] nanoKONTROL2 MIDI 1",
        "MIDI input ports (Other): no MIDI ports (none connected)",
    ]
    import sys as _sys

    print("still here", file=_sys.stderr)  # fd 2 is back after the listing
    assert capfd.readouterr().err == "still here\n"


@pytest.mark.parametrize("listing, hint", [
    ([M.MidiApiPorts("ALSA", [], "x"), M.MidiApiPorts("Jack", [], "y")], "a running JACK server"),
    ([M.MidiApiPorts("Jack", [])], "--midi-virtual NAME"),
])
def test_hint_when_there_is_no_port(listing, hint):
    assert hint in M.describe_midi_listing(listing)[-1]
