"""A real JACK server (dummy driver) for the live-path tests.

``jack_server`` is a session-scoped pytest fixture: it starts
``JACK_NO_AUDIO_RESERVATION=1 jackd -n vqtest-<pid>-<n> -d dummy -r 48000 -p 128``, waits
until a client can connect, sets ``JACK_DEFAULT_SERVER`` for this process (so PortAudio's
JACK host API, python-rtmidi's JACK MIDI and ``jack.Client`` all find it), re-initialises
PortAudio so that it enumerates the JACK devices, yields a :class:`JackServer`, and stops
the server at the end of the session. Tests that use it are skipped (with the reason)
when jackd is not installed or does not start.

The dummy driver runs its cycle on a timer: it is real time, 48 000 frames per second in
128-frame periods (375 cycles/s), with no sound card.

``tests/conftest.py`` imports the fixture, so every test module shares one server: a test
just names ``jack_server`` as an argument. (Do not import it into a test module: that makes a
second definition, hence a second server that runs until the session ends.)
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

import pytest

SAMPLE_RATE = 48000
PERIOD = 128
JACKD_OPTS = os.environ.get("VQTEST_JACKD_OPTS", "").split()
_counter = itertools.count()


@dataclass
class JackServer:
    name: str
    samplerate: int
    period: int
    process: subprocess.Popen
    log_path: str

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def xrun_report(self, since: int, dut: str, upstream: str) -> dict:
        """Classify the server's xruns logged after byte offset ``since``.

        * ``driver``: the dummy driver's own cycle started late ("JackTimedDriver::Process
          XRun"): the machine did not run the server's real-time thread on time; no client
          is involved (an idle server with no clients shows these too on a busy machine).
        * ``graph_env``: a graph xrun in which the ``upstream`` client (the test player, which
          does not depend on the device under test) was late as well: the whole cycle was
          late, not the device under test.
        * ``dut``: a graph xrun in which ``dut`` was late while ``upstream`` was not, or in
          which ``dut`` had started running and did not finish: the device under test's fault.
        * ``machine``: ``driver + graph_env``, the xruns that are not the device under test's.
        """
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            f.seek(since)
            lines = f.read().splitlines()
        rep = {"driver": 0, "graph_env": 0, "dut": 0, "lines": []}
        group: dict[str, str] = {}

        def flush():
            if not group:
                return
            late_dut = [st for cl, st in group.items() if cl.startswith(dut)]
            up_late = any(cl.startswith(upstream) for cl in group)
            if late_dut and (not up_late or any(st != "Triggered" for st in late_dut)):
                rep["dut"] += 1
            else:
                rep["graph_env"] += 1
            group.clear()

        for line in lines:
            if "JackTimedDriver::Process XRun" in line:
                rep["driver"] += 1
                rep["lines"].append(line)
            elif line.startswith("JackEngine::XRun: client = "):
                rest = line[len("JackEngine::XRun: client = "):]
                client, _, st = rest.partition(" was not finished, state = ")
                group[client.strip()] = st.strip()
                rep["lines"].append(line)
            elif "ProcessGraphAsyncMaster: Process error" in line or "Process error" in line:
                flush()
        flush()
        rep["machine"] = rep["driver"] + rep["graph_env"]
        return rep


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _reinit_portaudio() -> None:
    """PortAudio lists host APIs/devices once at initialisation: re-scan now JACK is up."""
    try:
        import sounddevice as sd
    except Exception:  # pragma: no cover - sounddevice missing
        return
    sd._terminate()
    sd._initialize()


def _registry() -> list[tuple[int, str]]:
    """(pid, name) of the entries in JACK's shared-memory server registry (jack2 layout: a
    24-byte header, then 8 slots of pid + 256-byte name); [] when there is none."""
    import struct

    try:
        with open("/dev/shm/jack-shm-registry", "rb") as f:
            b = f.read(24 + 8 * 264)
    except OSError:
        return []
    out = []
    for k in range(8):
        off = 24 + 264 * k
        if off + 264 > len(b):
            break
        pid = struct.unpack("<i", b[off:off + 4])[0]
        name = b[off + 4:off + 260].split(b"\0")[0].decode(errors="replace")
        if name:
            out.append((pid, name))
    return out


def _reclaim_jack_slot(name: str, log_dir: str) -> None:
    """A SIGKILLed jackd leaves its entry in JACK's shared-memory server registry (8 slots per
    machine, /dev/shm/jack-shm-registry); entries of dead servers are only reclaimed when a
    server of the *same name* registers. So: start one under the dead server's name and stop
    it politely, which unregisters it. Without this every run of this test would use up a slot
    for good, and after a few no jackd could start ("Too many servers already active").
    Readiness is read from the registry itself: no JACK client is opened in this process
    (libjack in a process that is already a client of another server can crash)."""
    import signal
    import subprocess

    log = open(os.path.join(log_dir, "reclaim.log"), "w")
    proc = subprocess.Popen(["jackd", *JACKD_OPTS, "-n", name, "-d", "dummy", "-r", "48000",
                             "-p", "128"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),
                            start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if any(pid == proc.pid and f":{name}:" in n for pid, n in _registry()):
                time.sleep(0.3)  # registered; let it finish starting before asking it to stop
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def reclaim_dead_test_slots(log_dir: str) -> list[str]:
    """Free the registry slots of vqtest servers whose process is gone (a killed test run):
    JACK has 8 per machine, and a dead server's slot is never given back by itself."""
    freed = []
    for pid, entry in _registry():
        parts = entry.split(":")
        name = parts[1] if len(parts) > 1 else entry
        if name.startswith("vqtest-") and not os.path.exists(f"/proc/{pid}"):
            _reclaim_jack_slot(name, log_dir)
            freed.append(name)
    return freed


def start_jack_server(samplerate: int = SAMPLE_RATE, period: int = PERIOD,
                      timeout_s: float = 10.0, log_dir: str | None = None) -> JackServer:
    jackd = shutil.which("jackd")
    if jackd is None:
        raise RuntimeError("jackd is not installed (Debian package jackd2)")
    name = f"vqtest-{os.getpid()}-{next(_counter)}"
    log_dir = log_dir or os.environ.get("TMPDIR", "/tmp")
    reclaim_dead_test_slots(log_dir)
    log_path = os.path.join(log_dir, f"{name}.log")
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    env.pop("JACK_DEFAULT_SERVER", None)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [jackd, *JACKD_OPTS, "-n", name, "-d", "dummy", "-r", str(samplerate), "-p", str(period)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True, preexec_fn=_die_with_parent,
    )
    log.close()
    server = JackServer(name, samplerate, period, proc, log_path)
    atexit.register(stop_jack_server, server)  # a crashed test run must not leave it behind
    # Probe with the C tool in a subprocess: no libjack state for this server is left in
    # the test process (a libjack client of a server that is later killed can crash it).
    probe = shutil.which("jack_wait")
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jackd exited with code {proc.returncode}:\n{server.log()}")
        if probe:
            r = subprocess.run([probe, "-s", name, "-c"], capture_output=True, text=True,
                               env=dict(env, JACK_NO_START_SERVER="1"), timeout=10)
            last = (r.stdout + r.stderr).strip()
            if r.returncode == 0 and "running" in r.stdout and "not running" not in r.stdout:
                return server
        else:
            import jack

            try:
                c = jack.Client("vqtest-probe", no_start_server=True, servername=name)
                c.close()
                return server
            except jack.JackError as exc:
                last = str(exc)
        time.sleep(0.1)
    stop_jack_server(server)
    raise RuntimeError(f"jackd '{name}' did not become ready in {timeout_s} s ({last}):\n{server.log()}")


def stop_jack_server(server: JackServer, timeout_s: float = 5.0) -> None:
    proc = server.process
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


@pytest.fixture(scope="session")
def jack_server():
    try:
        server = start_jack_server()
    except Exception as exc:  # no jackd, or it cannot start here
        pytest.skip(f"JACK dummy server unavailable: {exc}")
    old = os.environ.get("JACK_DEFAULT_SERVER")
    old_nostart = os.environ.get("JACK_NO_START_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = server.name
    os.environ["JACK_NO_START_SERVER"] = "1"
    _reinit_portaudio()
    try:
        yield server
    finally:
        # Close PortAudio's JACK client while the server is still there: tearing JACK down
        # under a live PortAudio client aborts the process.
        try:
            import sounddevice as sd

            sd._terminate()
        except Exception:
            pass
        stop_jack_server(server)
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old
        if old_nostart is None:
            os.environ.pop("JACK_NO_START_SERVER", None)
        else:
            os.environ["JACK_NO_START_SERVER"] = old_nostart
        try:
            import sounddevice as sd

            sd._initialize()
        except Exception:
            pass


class PlayRecord:
    """Two JACK test clients: a player that plays ``signal`` and a recorder that records
    ``n_record`` frames, both starting in the same JACK cycle (the first whose frame time
    reaches ``t0``), so ``record[i]`` is what the device under test output while
    ``signal[i]`` was being played. Two clients rather than one so the graph
    player -> device under test -> recorder has no feedback edge: all three run in the
    same JACK cycle, and a measured delay is the device's own.
    """

    def __init__(self, signal, n_record: int, prefix: str = "vqtest"):
        import jack
        import numpy as np

        self.np = np
        self.signal = np.ascontiguousarray(signal, dtype=np.float32)
        if self.signal.ndim == 1:
            self.signal = self.signal[:, None]
        self.channels = self.signal.shape[1]
        self.record = np.zeros((n_record, self.channels), dtype=np.float32)
        self.t0 = None  # JACK frame time at which signal[0] is played (start of a cycle)
        self._ppos = -1
        self._rpos = -1
        self.played_frames = 0
        self.rec_start_frame_time = None
        self.xruns = 0          # xrun notifications to the player (one per server xrun)
        self.player = jack.Client(f"{prefix}-player-{os.getpid()}", no_start_server=True)
        self.recorder = jack.Client(f"{prefix}-recorder-{os.getpid()}", no_start_server=True)
        self.outs = [self.player.outports.register(f"out_{i}") for i in range(self.channels)]
        self.ins = [self.recorder.inports.register(f"in_{i}") for i in range(self.channels)]
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._rec)
        self.player.set_xrun_callback(self._xrun)

    def _xrun(self, delay_usecs):
        self.xruns += 1

    def _play(self, frames):
        # Armed at the first cycle whose frame time reaches t0; from then on the signal is
        # played block after block by a counter (not by frame time), so a late driver cycle
        # (the frame clock jumps after an xrun) cannot skip samples in the data path.
        if self._ppos < 0:
            if self.t0 is None or self.player.last_frame_time < self.t0:
                for port in self.outs:
                    port.get_array().fill(0.0)
                return
            self._ppos = 0
        a = self._ppos
        lo, hi = a, min(a + frames, len(self.signal))
        for ch, port in enumerate(self.outs):
            buf = port.get_array()
            buf.fill(0.0)
            if hi > lo:
                buf[:hi - lo] = self.signal[lo:hi, ch]
        self._ppos = a + frames
        self.played_frames = self._ppos

    def _rec(self, frames):
        if self._rpos < 0:
            if self.t0 is None or self.recorder.last_frame_time < self.t0:
                return
            self._rpos = 0
            self.rec_start_frame_time = self.recorder.last_frame_time
        a = self._rpos
        lo, hi = a, min(a + frames, len(self.record))
        if hi > lo:
            for ch, port in enumerate(self.ins):
                self.record[lo:hi, ch] = port.get_array()[:hi - lo]
        self._rpos = a + frames

    def activate(self):
        self.player.activate()
        self.recorder.activate()

    def connect(self, dut_inputs, dut_outputs, disconnect_others: bool = True):
        """Player -> ``dut_inputs`` and ``dut_outputs`` -> recorder, explicitly."""
        c = self.player
        for src, dst in zip(self.outs, dut_inputs):
            if disconnect_others:
                for other in c.get_all_connections(dst):
                    c.disconnect(other, dst)
            c.connect(src, dst)
        for src, dst in zip(dut_outputs, self.ins):
            if disconnect_others:
                for other in c.get_all_connections(src):
                    c.disconnect(src, other)
            c.connect(src, dst)

    def start(self, lead_s: float = 0.25):
        """Schedule signal[0] at a frame time ``lead_s`` from now."""
        c = self.player
        self.t0 = c.frame_time + int(lead_s * c.samplerate)

    def done(self) -> bool:
        return self._rpos >= len(self.record)

    def close(self):
        for cl in (self.player, self.recorder):
            try:
                cl.deactivate()
                cl.close()
            except Exception:
                pass


def _playrec_main(argv=None) -> int:
    """``python -m tests.jack_server playrec SIGNAL.npy OUT.npz --dut NAME [--tail S]``:
    play SIGNAL into NAME:in_* and record NAME:out_*, in a process of its own (so the
    test clients' Python callbacks do not compete for the GIL of the process under test).
    Writes ``record``, ``xruns`` to OUT.npz."""
    import argparse
    import json

    import numpy as np

    ap = argparse.ArgumentParser(prog="python -m tests.jack_server")
    ap.add_argument("cmd", choices=["playrec"])
    ap.add_argument("signal")
    ap.add_argument("out")
    ap.add_argument("--dut", required=True, help="JACK client name of the device under test")
    ap.add_argument("--tail", type=float, default=0.3)
    ap.add_argument("--lead", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args(argv)
    from vqblur.engine.stage.realtime import try_realtime

    # Real-time priority for this thread too: if it were preempted while holding the GIL,
    # the player/recorder callbacks (JACK's real-time threads) would wait for it.
    try_realtime(1)
    sig = np.load(a.signal)
    if sig.ndim == 1:
        sig = sig[:, None]
    pr = PlayRecord(sig, len(sig) + int(a.tail * SAMPLE_RATE))
    try:
        pr.activate()
        c = pr.player
        dut_in = c.get_ports(f"{a.dut}:in_.*", is_audio=True)
        dut_out = c.get_ports(f"{a.dut}:out_.*", is_audio=True)
        if len(dut_in) < pr.channels or len(dut_out) < pr.channels:
            print(json.dumps({"error": f"ports of '{a.dut}' not found: {dut_in} {dut_out}"}))
            return 3
        pr.connect(dut_in[:pr.channels], dut_out[:pr.channels])
        time.sleep(0.2)
        xruns_before = pr.xruns
        pr.start(a.lead)
        deadline = time.monotonic() + len(sig) / SAMPLE_RATE + a.tail + a.lead + a.timeout
        while not pr.done():
            if time.monotonic() > deadline:
                print(json.dumps({"error": "timed out"}))
                return 4
            time.sleep(0.1)
        # each client hears every server xrun: count per client, not the sum
        xruns = (pr.xruns - xruns_before)
        np.savez(a.out, record=pr.record, xruns=np.int64(xruns))
        print(json.dumps({"ok": True, "xruns": xruns}))
        return 0
    finally:
        pr.close()


def _loop_main(argv) -> int:
    """``python -m tests.jack_server loop CLIP.wav --dut NAME [--channels N] [--seconds S]``:
    play CLIP over and over into NAME:in_* (the first channel of the clip on every channel),
    from the moment those ports exist, in a process of its own; prints ``playing`` once
    connected and the xruns it was told of at the end."""
    import argparse
    import json

    import jack
    import numpy as np
    import soundfile as sf

    ap = argparse.ArgumentParser(prog="python -m tests.jack_server loop")
    ap.add_argument("clip")
    ap.add_argument("--dut", required=True, help="the client's name (a regular expression)")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args(argv)
    from vqblur.engine.stage.realtime import try_realtime

    try_realtime(1)
    x, _ = sf.read(a.clip, dtype="float32", always_2d=True)
    x = np.ascontiguousarray(np.repeat(x[:, :1], a.channels, axis=1))
    n = len(x)
    x = np.concatenate([x, x[:PERIOD * 64]])  # a block never wraps: one slice per cycle
    client = jack.Client(f"vqtest-loop-{os.getpid()}", no_start_server=True)
    outs = [client.outports.register(f"out_{i}") for i in range(a.channels)]
    state = {"pos": 0, "xruns": 0}

    def process(frames):
        p = state["pos"]
        for ch, port in enumerate(outs):
            port.get_array()[:] = x[p:p + frames, ch]
        state["pos"] = (p + frames) % n

    client.set_process_callback(process)
    client.set_xrun_callback(lambda delay: state.__setitem__("xruns", state["xruns"] + 1))
    client.activate()
    try:
        deadline = time.monotonic() + 60
        while True:
            ins = client.get_ports(f"{a.dut}:in_.*", is_audio=True)
            if len(ins) >= a.channels:
                break
            if time.monotonic() > deadline:
                print(json.dumps({"error": f"ports of '{a.dut}' not found"}), flush=True)
                return 3
            time.sleep(0.05)
        for src, dst in zip(outs, ins):
            for other in client.get_all_connections(dst):
                client.disconnect(other, dst)
            client.connect(src, dst)
        print("playing", flush=True)
        time.sleep(a.seconds)
        print(json.dumps({"ok": True, "xruns": state["xruns"]}), flush=True)
        return 0
    finally:
        client.deactivate()
        client.close()


if __name__ == "__main__":
    import sys as _sys

    if _sys.argv[1:2] == ["loop"]:
        _sys.exit(_loop_main(_sys.argv[2:]))
    _sys.exit(_playrec_main())
