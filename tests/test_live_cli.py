"""`vqblur live` end to end on the JACK dummy server, in a subprocess: listing, errors,
a timed run with a virtual MIDI port, Ctrl-C, the server dying under it, and no torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.jack_server import start_jack_server, stop_jack_server

pytestmark = pytest.mark.jack
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory):
    from tests.toy_bundle import make_toy_bundle

    return str(make_toy_bundle(tmp_path_factory.mktemp("bundle") / "toy"))


def vqblur(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "vqblur", "live", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def test_list_devices_and_midi(jack_server):
    r = vqblur("--list-devices", "--list-midi", "--midi-api", "jack", "--list-controllers")
    assert r.returncode == 0, r.stderr
    assert "system" in r.stdout and "JACK Audio Connection Kit" in r.stdout
    assert "2 in, 2 out" in r.stdout
    assert "MIDI input ports (Jack)" in r.stdout
    assert "korg_nanokontrol2" in r.stdout


def test_unknown_device_lists_what_exists(jack_server, toy_bundle):
    r = vqblur("--input", "Focusrite 18i20", "--bundle", toy_bundle)
    assert r.returncode == 2
    assert "no audio input device matches 'Focusrite 18i20'" in r.stderr
    assert "system" in r.stderr and "Traceback" not in r.stderr
    r = vqblur("--midi", "nanoKONTROL", "--midi-api", "jack", "--bundle", toy_bundle, "--duration", "1")
    assert r.returncode == 2 and "no MIDI input port matches 'nanoKONTROL'" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_audio_device_at_all_is_a_clear_message(toy_bundle):
    # no JACK server by that name and (on these machines) no ALSA card: PortAudio sees nothing
    env = {"JACK_DEFAULT_SERVER": f"vq-none-{os.getpid()}", "JACK_NO_START_SERVER": "1"}
    probe = subprocess.run([sys.executable, "-c", "import sounddevice as sd; print(len(sd.query_devices()))"],
                           capture_output=True, text=True, env=dict(os.environ, **env))
    if probe.stdout.strip() != "0":
        pytest.skip("this machine has an audio device")
    r = vqblur("--bundle", toy_bundle, "--duration", "1", env=env)
    assert r.returncode == 2, r.stderr
    assert "no audio device found" in r.stderr and "Traceback" not in r.stderr


def test_timed_run_with_virtual_midi_port(jack_server, toy_bundle):
    name = f"vqcli-{os.getpid()}"
    r = vqblur("--bundle", toy_bundle, "--input", "system", "--output", "system", "--duration", "2",
               "--midi-virtual", "knobs", "--midi-api", "jack", "--controller", "korg_nanokontrol2",
               "--preset", "subtle", "--jack-name", name)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "latency 527 samples (10.98 ms = engine 399 + one host block 128)" in err, err
    # the start line says whether the CPUs' wake-up latency is held (PM QoS) or why not
    assert "; CPU wake-up latency held at 0 us" in err or "; CPUs may sleep: no (" in err, err
    assert "MIDI input 'knobs'" in err and "Korg nanoKONTROL2" in err
    status = [ln for ln in err.splitlines() if "| lat 10.98 ms |" in ln]
    assert status and "zone 0.12" in status[0] and "| midi 0 ign 0" in status[0], err  # preset 'subtle'
    summary = [ln for ln in err.splitlines() if " callbacks, " in ln][0]
    n_callbacks = int(summary.split("vqblur live: ")[1].split(" callbacks")[0])
    assert 600 <= n_callbacks <= 900  # ~375 callbacks/s for 2 s


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal. A test run started in the background by a shell
    without job control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly(jack_server, toy_bundle):
    p = subprocess.Popen([sys.executable, "-m", "vqblur", "live", "--bundle", toy_bundle,
                          "--jack-name", f"vqint-{os.getpid()}"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_default_sigint)
    time.sleep(3.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    assert "stopped (Ctrl-C)" in err and "Traceback" not in err
    assert " callbacks, " in err


def test_server_dying_is_reported_and_exits(toy_bundle, tmp_path):
    server = start_jack_server(log_dir=str(tmp_path))
    try:
        env = dict(os.environ, JACK_DEFAULT_SERVER=server.name, JACK_NO_START_SERVER="1")
        p = subprocess.Popen([sys.executable, "-m", "vqblur", "live", "--bundle", toy_bundle,
                              "--duration", "60", "--jack-name", f"vqdie-{os.getpid()}"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(3.0)
        assert p.poll() is None, p.communicate()[1]
        stop_jack_server(server)
        t = time.monotonic()
        out, err = p.communicate(timeout=20)
        assert time.monotonic() - t < 15
    finally:
        stop_jack_server(server)
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, err
    assert ("audio stream stopped" in err or "no audio for" in err), err
    assert "Traceback" not in err


def test_live_path_never_imports_torch():
    code = ("import sys, vqblur.cli as c; c.build_parser(); "
            "import vqblur.commands.live, vqblur.engine.stage.runner, vqblur.engine.stage.status, vqblur.engine.stage.midi, vqblur.engine.stage.ring; "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_learn_assigns_knobs_and_saves_the_map(jack_server, toy_bundle, tmp_path):
    """`vqblur live --learn`: each prompt is answered by moving a control (a CC from a JACK MIDI
    sender); the map is saved and used for the run."""
    import threading

    import rtmidi

    name = f"vqlearn-{os.getpid()}"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "vqblur", "live", "--bundle", toy_bundle, "--learn",
                          "--midi-virtual", "knobs", "--midi-api", "jack", "--duration", "1",
                          "--jack-name", name], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, f"vqlearn-send-{os.getpid()}")
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while not any(f"{name}:knobs" in q for q in out.get_ports()):
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() is not None else ""
            time.sleep(0.05)
        out.open_port([i for i, q in enumerate(out.get_ports()) if f"{name}:knobs" in q][0])
        ccs = iter([(0xB0, 30), (0xB0, 31), (0xB1, 32), (0xB0, 33), (0xB0, 34), (0xB0, 35), (0xB0, 36), (0xB0, 37)])

        def answer():
            for line in p.stderr:
                lines.append(line)
                if "learn: move the control for" in line:
                    st, cc = next(ccs)
                    time.sleep(0.5)  # after the settle time
                    out.send_message([st, cc, 64])
                    out.send_message([st, cc, 70])

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        p.wait(timeout=40)
        t.join(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
        out.close_port()
        out.delete()
    err = "".join(lines)
    assert p.returncode == 0, err
    saved = tmp_path / "vqblur" / "controllers" / "learned.toml"
    assert saved.is_file(), err
    from vqblur.engine.stage.midi import load_controller_map

    cm = load_controller_map(str(saved))
    assert {k: (b.cc, b.channel) for k, b in cm.bindings.items()} == {
        "zone_size": (30, 0), "temperature": (31, 0), "centre": (32, 1), "mix": (33, 0),
        "bypass": (34, 0), "detail": (35, 0), "scale": (36, 0), "smear": (37, 0)}
    assert cm.bindings["bypass"].toggle
