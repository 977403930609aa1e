"""`vqblur live --view` for real: on the JACK dummy server, in a pseudo-terminal (tmux), with a
JACK player feeding it a signal. The captured screen text shows the code grid (changed cells,
the zone outline), the meters, the knobs and the counters, and follows an OSC knob change;
a terminal too small (or none) gets the status line; and a view thread drawing all the while
leaves the live audio bit-identical to the offline render of the same input and seed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.ab_phases import count_by_phase, excess_allowed
from tests.test_live_jack import make_signal, signal_has_played
from tests.toy_bundle import make_toy_bundle
from vqblur.engine.core import KNOBS, Params

pytestmark = pytest.mark.jack
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 48000


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return str(make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy"))


def _tmux():
    t = shutil.which("tmux")
    if t is None:
        pytest.skip("tmux is not installed (scripts/setup.sh installs it)")
    return t


class Pane:
    """A detached tmux session of its own (own server socket) running one shell command."""

    def __init__(self, command: str, width: int, height: int):
        self.tmux = _tmux()
        self.sock = f"vqview-{os.getpid()}-{time.monotonic_ns() % 1000000}"
        subprocess.run([self.tmux, "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-s", "v",
                        "-x", str(width), "-y", str(height), command],
                       cwd=ROOT, env=dict(os.environ, TERM="xterm-256color"), check=True, timeout=30)

    def text(self, escapes: bool = False) -> str:
        r = subprocess.run([self.tmux, "-L", self.sock, "capture-pane", "-p", "-t", "v"]
                           + (["-e"] if escapes else []), capture_output=True, text=True, timeout=30)
        return r.stdout

    def wait_for(self, pred, timeout: float) -> str:
        t = time.monotonic() + timeout
        txt = ""
        while time.monotonic() < t:
            txt = self.text()
            if pred(txt):
                return txt
            time.sleep(0.2)
        return txt

    def close(self):
        subprocess.run([self.tmux, "-L", self.sock, "kill-server"], capture_output=True, timeout=30)


def _live_command(toy, tmp_path, name, *extra) -> str:
    args = [sys.executable, "-m", "vqblur", "live", "--bundle", toy, "--input", "system",
            "--output", "system", "--jack-name", name, *extra]
    return (" ".join(shlex.quote(a) for a in args) + f" 2> {shlex.quote(str(tmp_path / 'err.txt'))}"
            + f"; echo $? > {shlex.quote(str(tmp_path / 'rc.txt'))}; sleep 30")


def _wait_file(path, timeout: float) -> str:
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read()
        time.sleep(0.1)
    raise AssertionError(f"{path} never written")


def _coloured_cells(coloured: str) -> int:
    """Grid cells with a background colour (256-colour or RGB SGR codes) in the grid's 20 rows
    of a ``capture-pane -e`` text."""
    grid_rows = coloured.splitlines()[1:21]
    return sum(len(re.findall(r"\x1b\[[0-9;]*4[8];[25];[0-9;]+m", ln)) for ln in grid_rows)


def test_view_in_a_pseudo_terminal_shows_grid_zone_meters_and_follows_osc(jack_server, tmp_path):
    """The shipped model, preset 'smear', a 6 s signal from a JACK player: the screen text."""
    from pythonosc.udp_client import SimpleUDPClient

    from vqblur.engine.bundle import default_bundle_path

    name = f"vqview-{os.getpid()}"
    pane = Pane(_live_command(str(default_bundle_path()), tmp_path, name, "--view", "--preset", "smear",
                              "--osc", "0", "--duration", "14"), 120, 40)
    play = None
    try:
        first = pane.wait_for(lambda t: "under-runs" in t, 60)
        assert "under-runs" in first, first + open(tmp_path / "err.txt").read()
        sig = make_signal(6.0, channels=1, seed=21)
        np.save(tmp_path / "sig.npy", sig)
        play = subprocess.Popen([sys.executable, "-m", "tests.jack_server", "playrec",
                                 str(tmp_path / "sig.npy"), str(tmp_path / "rec.npz"), "--dut", name],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def playing(t):  # the signal has been in for a while, and the view has drawn it
            m = re.search(r"^in\s+[█░]+ peak\s+(-?[\d.]+) ", t, re.M)
            f = re.search(r"view (\d+) frames", t)
            return m is not None and f is not None and int(f.group(1)) >= 15 and t.count("×") > 20

        # the grid fills from the right one column at a time, so under load (the other core
        # busy) its coloured cells can lag the frame count: wait for both, read both together
        t_end = time.monotonic() + 30
        while True:
            screen, coloured = pane.text(), pane.text(escapes=True)
            if (playing(screen) and _coloured_cells(coloured) > 200) or time.monotonic() > t_end:
                break
            time.sleep(0.2)
        (tmp_path / "view.txt").write_text(screen)
        if os.environ.get("VQTEST_VIEW_CAPTURE"):  # keep the picture (for the report)
            with open(os.environ["VQTEST_VIEW_CAPTURE"], "w") as f:
                f.write(screen)
        print("\n--- captured view (tmux capture-pane, 120x40) ---\n" + screen)
        port = int(re.search(r"osc\.udp://127\.0\.0\.1:(\d+)", open(tmp_path / "err.txt").read()).group(1))
        SimpleUDPClient("127.0.0.1", port).send_message("/vqblur/zone_size", 0.125)
        after_osc = pane.wait_for(lambda t: "zone_size 0.12" in t or "zone_size 0.13" in t, 10)
        out, err = play.communicate(timeout=60)
        assert play.returncode == 0, out + err[-2000:]
        rc = _wait_file(tmp_path / "rc.txt", 60).strip()
    finally:
        if play is not None and play.poll() is None:
            play.kill()
        pane.close()
    errtxt = open(tmp_path / "err.txt").read()
    assert rc == "0", errtxt
    lines = screen.splitlines()
    assert lines[0].startswith("vqblur live") and "latency 10.98 ms" in lines[0], screen
    # the grid: 20 rows, labelled every 4th row in kHz, the newest column at the right
    from vqblur.engine.bundle import default_bundle_path, load_bundle

    edges = load_bundle(default_bundle_path()).row_edges_hz()  # the shipped bundle's rows
    labels = [ln[:7].strip() for ln in lines[1:21]]
    assert labels[-1] == "0.0k" and labels[-5] == f"{edges[4] / 1000:.1f}k" and labels[0] == "", labels
    assert screen.count("×") > 20, screen  # cells the blur changed
    # codes as colours: the grid's cells carry background colours (256-colour or RGB SGR codes)
    assert _coloured_cells(coloured) > 200, coloured
    # preset smear: the rows the engine resamples for its zone (the perceptual axis on the
    # bundle's rows), the outline on the row above them, the centre marked on the right
    from vqblur.engine.blur.zone import PerceptualZone
    from vqblur.engine.presets import load_preset

    p = load_preset("smear").params
    z = PerceptualZone(48000, 320, 160, edges, 4)
    z.update(p.zone_size, p.centre)
    top = int(np.flatnonzero(z.micro_rows)[-1]) + 1
    assert top <= 19
    assert lines[1 + 19 - top].count("▁") > 20, screen
    assert "◀" in lines[1 + 19 - z.centre_row(p.centre)]
    meters = next(ln for ln in lines if ln.startswith("in "))
    peak_in = float(re.search(r"^in\s+[█░]+ peak\s+(-?[\d.]+) ", meters).group(1))
    assert -40 < peak_in <= 0, meters
    knobs = next(ln for ln in lines if ln.startswith("knobs"))
    for k in KNOBS:
        assert k in knobs, knobs
    assert "OSC 0 (ignored 0)" in screen
    assert ("zone_size 0.12" in after_osc or "zone_size 0.13" in after_osc), after_osc
    assert "OSC 1 (ignored 0)" in after_osc, after_osc
    assert "Traceback" not in errtxt and "under-runs" in errtxt and "view frames" in errtxt, errtxt


def test_small_terminal_or_no_terminal_keeps_the_status_line(jack_server, toy, tmp_path):
    name = f"vqviewsm-{os.getpid()}"
    pane = Pane(_live_command(toy, tmp_path, name, "--view", "--duration", "2"), 50, 20)
    try:
        rc = _wait_file(tmp_path / "rc.txt", 60).strip()
        screen = pane.text()
    finally:
        pane.close()
    err = open(tmp_path / "err.txt").read()
    assert rc == "0", err
    assert "no live view (terminal 50x20 is smaller than the 60x26 the view needs)" in err, err
    assert "| lat 10.98 ms |" in err  # the status line, as without --view
    assert "×" not in screen
    r = subprocess.run([sys.executable, "-m", "vqblur", "live", "--bundle", toy, "--input", "system",
                        "--output", "system", "--jack-name", name + "p", "--view", "--duration", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "no live view (not a terminal)" in r.stderr and "| lat 10.98 ms |" in r.stderr


def test_live_audio_is_the_same_with_the_view_drawing(jack_server, toy, tmp_path):
    """A LiveRunner with the engine's (shared) tap and the view process drawing 30 frames/s: the
    worker's output is exactly the offline render (no tap, no view, same seed) of the input
    the callback received, and the view costs no under-runs: measured A/B, the view process
    drawing in ten 0.1 s phases and stopped (SIGSTOP) in the ten between (tests/ab_phases.py)."""
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.resample import make_engine
    from vqblur.engine.stage.tap import ColumnTap
    from vqblur.engine.stage.view import ViewProcess

    knobs = dict(zone_size=0.4, temperature=0.6, centre=0.5)
    eng = make_engine(toy, sample_rate=SR, params=Params(**knobs), channels=1, seed=5)
    tap = ColumnTap(eng.config.rows, capacity=8192, shared=True)
    eng.tap = tap
    name = f"vqviewaudio-{os.getpid()}"
    runner = LiveRunner(eng, samplerate=SR, blocksize=0, channels=1, input_device="system",
                        output_device="system", jack_client_name=name, capture_seconds=10.0,
                        worker_priority=3)
    out = open(tmp_path / "view.ansi", "w")
    view = ViewProcess(runner, tap, knobs=KNOBS, fps=30.0, band_hz=1200.0, stdout=out, size=(160, 50))
    assert view.usable() == (True, "")
    sig = make_signal(4.0, channels=1, seed=9)  # the A/B's 2 s fit inside it
    np.save(tmp_path / "sig.npy", sig)
    runner.start()
    view.start()
    drawing = {"on": True, "next_publish": 0.0}

    def tick(phase: int) -> None:  # the status loop's job in `vqblur live`, in the "on" phases
        on = phase < 0 or phase % 2 == 0
        if on != drawing["on"]:
            os.kill(view.proc.pid, signal.SIGCONT if on else signal.SIGSTOP)
            drawing["on"] = on
        now = time.monotonic()
        if on and now >= drawing["next_publish"]:
            view.publish()
            drawing["next_publish"] = now + 0.1

    log0 = jack_server.log_size()
    try:
        play = subprocess.Popen([sys.executable, "-m", "tests.jack_server", "playrec",
                                 str(tmp_path / "sig.npy"), str(tmp_path / "rec.npz"), "--dut", name],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30.0
        while not signal_has_played(runner, 0.2) and play.poll() is None and time.monotonic() < deadline:
            tick(-1)
            time.sleep(0.01)
        assert signal_has_played(runner, 0.2), "the player's signal never arrived"
        ab = count_by_phase(runner, time.monotonic() + 0.05, tick)
        tick(-1)  # drawing again
        while play.poll() is None:
            tick(-1)
            time.sleep(0.05)
        assert play.returncode == 0, play.stdout.read() + play.stderr.read()[-2000:]
        assert runner.active and runner.worker_error is None
        xr = jack_server.xrun_report(log0, dut=name, upstream="vqtest-player")
    finally:
        if view.proc is not None and view.proc.poll() is None:
            os.kill(view.proc.pid, signal.SIGCONT)
        view.stop()
        runner.stop()
        out.close()
        tap.close(unlink=True)
    st = runner.stats()
    print(f"view process: {view.frames} frames, {view.errors} errors; runner {st.underruns} "
          f"under-runs in {st.callbacks} callbacks; JACK xruns {xr['driver']} driver, "
          f"{xr['graph_env']} graph, {xr['dut']} ours")
    assert view.errors == 0 and view.frames >= 30, view.frames
    assert (tmp_path / "view.ansi").stat().st_size > 10000  # it did draw
    cap_in, cap_out = runner.capture_in, runner.capture_out
    pos0 = int(np.flatnonzero(np.abs(cap_in[:, 0]) > 0)[0])
    n = min(pos0 + len(sig), runner.capture_frames - runner.prefill)
    ref = make_engine(toy, sample_rate=SR, params=Params(**knobs), channels=1, seed=5)
    y_off = np.asarray(ref.process(cap_in[:n].copy()), np.float32).reshape(n, -1)
    P = runner.prefill
    assert np.array_equal(cap_out[P:P + n], y_off), np.max(np.abs(cap_out[P:P + n] - y_off))
    print(f"view A/B: {ab.summary()}")
    assert ab.excess <= excess_allowed(ab), ab.summary()


def test_a_view_process_that_dies_gives_back_the_status_line(jack_server, tmp_path):
    import io
    import threading

    from vqblur.engine.stage.runner import LiveRunner, PassThrough
    from vqblur.engine.stage.status import run_live
    from vqblur.engine.stage.tap import ColumnTap
    from vqblur.engine.stage.view import ViewProcess

    runner = LiveRunner(PassThrough(), samplerate=SR, input_device="system", output_device="system",
                        jack_client_name=f"vqviewdie-{os.getpid()}")
    tap = ColumnTap(20, capacity=1024, shared=True)
    sink = open(tmp_path / "view.ansi", "w")
    view = ViewProcess(runner, tap, knobs=KNOBS, stdout=sink, size=(100, 30))
    out = io.StringIO()
    killer = threading.Timer(1.5, lambda: view.proc.kill())
    killer.start()
    try:
        code = run_live(runner, duration_s=4.5, out=out, view=view)
    finally:
        killer.cancel()
        sink.close()
        tap.close(unlink=True)
    text = out.getvalue()
    assert code == 0, text
    assert text.count("the live view stopped (exit code -9); showing the status line") == 1, text
    after = text.split("showing the status line", 1)[1]
    assert "| lat " in after, text  # the status line is back
    assert "view frames" in text


def test_ctrl_c_stops_the_view_and_restores_the_terminal(jack_server, toy, tmp_path):
    name = f"vqviewint-{os.getpid()}"
    pane = Pane(_live_command(toy, tmp_path, name, "--view", "--duration", "60"), 100, 30)
    try:
        first = pane.wait_for(lambda t: "under-runs" in t, 60)
        assert "under-runs" in first, first + open(tmp_path / "err.txt").read()
        subprocess.run([pane.tmux, "-L", pane.sock, "send-keys", "-t", "v", "C-c"], check=True, timeout=30)
        rc = _wait_file(tmp_path / "rc.txt", 30).strip()
        screen = pane.text()
    finally:
        pane.close()
    err = open(tmp_path / "err.txt").read()
    assert rc == "0", err
    assert "stopped (Ctrl-C)" in err and "view frames" in err and "Traceback" not in err, err
    assert "changed by the blur" not in screen  # the view left the alternate screen
