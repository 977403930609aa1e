"""`vqblur live --view`: a full-terminal picture of the code grid, level meters and counters.

Drawn with ``rich`` (``rich.live.Live`` on the alternate screen) by **a process of its own**
(:class:`ViewProcess`, ``python -m vqblur.engine.stage.view``), a few times a second. Drawing is
pure Python and would hold the audio process's GIL for milliseconds per frame -- measured on
the JACK dummy server: hundreds of under-runs when a view thread drew in-process -- so the
audio process only publishes numbers into shared memory and the view process reads them:

* the code columns: the engine's :class:`~vqblur.engine.stage.tap.ColumnTap` (``shared=True``),
  written by the worker once per column (codes before/after the blur, smoothed zone knobs);
* everything else: a :class:`ViewState` (one shared float64 array: counters, latency, knob
  values, level meters, load) that :class:`ViewPublisher` fills from the live runner, the
  MIDI input and the OSC server on the main thread's status loop (10 times a second; the
  meters are the peak/RMS of the last 0.1 s of the runner's input and output rings).

Neither the audio callback nor the worker ever waits for the view: if the terminal is slow
the view process blocks in its own write and draws fewer frames. When the terminal is too
small (:func:`min_size`) or not a terminal, ``run_live`` keeps the one-line status instead; a
terminal shrunk while running shows that status line in place.

Picture: rows = frequency bands (highest at the top), columns = time (newest at the right);
each character is one code column or the last of a group of them (the last ``seconds`` fit
the width), its background colour is the code after the blur, ``×`` marks a cell the blur
changed in that group, and ``▁``/``▔`` above/below the zone draw its outline as the knobs
moved it.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from typing import Any

import numpy as np

from vqblur.engine.stage.viewstate import NOTE_S, ViewPublisher, ViewState, status_text

__all__ = ["LiveView", "ViewProcess", "ViewPublisher", "ViewState", "fits", "min_size", "status_text"]

GRID_LABEL = 7  # characters of row labels left of the grid
GRID_RIGHT = 2  # the zone marker right of the grid
MIN_WIDTH = 60
EXTRA_LINES = 6  # header, time axis, meters, knobs, load, counters
METER_DB = 60.0  # meters span -60..0 dBFS


def min_size(rows: int) -> tuple[int, int]:
    """(width, height) the full view needs for a grid of ``rows`` rows."""
    return MIN_WIDTH, rows + EXTRA_LINES


def _palette(n: int) -> np.ndarray:
    """``[n, 3]`` uint8 RGB, one colour per code (matplotlib's nipy_spectral, as `blur --png`)."""
    try:
        from matplotlib import colormaps

        rgb = colormaps["nipy_spectral"](np.linspace(0.0, 1.0, n))[:, :3]
    except Exception:  # matplotlib missing or without the map: an HSV ramp
        import colorsys

        rgb = np.array([colorsys.hsv_to_rgb(0.8 * i / max(n - 1, 1), 0.9, 0.9) for i in range(n)])
    return (255 * rgb).round().astype(np.uint8)


class _Styles:
    """rich Styles per code, made once: background = the code's colour; glyphs in contrast."""

    def __init__(self, n: int) -> None:
        from rich.color import Color
        from rich.style import Style

        pal = _palette(n)
        self.cell = []
        self.mark = []
        for r, g, b in pal.tolist():
            bg = Color.from_rgb(r, g, b)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 140
            fg = Color.from_rgb(255, 255, 255) if dark else Color.from_rgb(0, 0, 0)
            self.cell.append(Style(bgcolor=bg))
            self.mark.append(Style(color=fg, bgcolor=bg, bold=True))
        self.empty = Style(dim=True)
        self.label = Style(dim=True)
        self.zone = Style(color="bright_white", bold=True)


class _GridRenderable:
    """Already computed grid lines -> rich Segments (runs of equal style merged)."""

    def __init__(self, lines: list[list[tuple[str, Any]]]) -> None:
        self.lines = lines

    def __rich_console__(self, console, options):
        from rich.segment import Segment

        for line in self.lines:
            for text, style in line:
                yield Segment(text, style)
            yield Segment.line()


def _bar(frac: float, width: int) -> str:
    frac = 0.0 if not frac > 0 else min(frac, 1.0)
    full = int(round(frac * width))
    return "█" * full + "░" * (width - full)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-10 else -math.inf



# ============================================================================ the zone's axis
def zone_axis_of(engine) -> tuple:
    """The axis the view outlines the zone on, from an :class:`~vqblur.engine.core.Engine`:
    ``(sample_rate, n_fft, model_bins, row_edges_hz, bin_freqs)``, the engine's own (its zone's
    row edges; ``bin_freqs`` = (centres, spacings) of the model bins for the split framing,
    whose bins are not evenly spaced, else None), so the outline is the rows the engine
    resamples."""
    cfg = engine.config
    bin_freqs = None
    if cfg.split_layout() is not None:
        c, w = cfg.model_bin_hz()
        bin_freqs = ([float(v) for v in c], [float(v) for v in w])
    return (int(cfg.sample_rate), int(cfg.n_fft), int(cfg.model_bins),
            [float(e) for e in engine.zone.row_edges_hz], bin_freqs)


def zone_axis_args(zone_axis) -> list[str]:
    """``zone_axis`` (see :func:`zone_axis_of`) as the view process's arguments."""
    sr, n_fft, bins, edges, *rest = zone_axis
    args = ["--zone-axis", ",".join(repr(float(v)) if i > 2 else str(int(v))
                                    for i, v in enumerate((sr, n_fft, bins, *edges)))]
    if rest and rest[0] is not None:
        args += ["--zone-bins", ",".join(repr(float(v)) for v in (*rest[0][0], *rest[0][1]))]
    return args


def parse_zone_axis(zone_axis: str, zone_bins: str | None = None) -> tuple:
    """The view process's ``--zone-axis`` / ``--zone-bins`` back to a ``zone_axis`` tuple."""
    v = [float(x) for x in zone_axis.split(",")]
    bin_freqs = None
    if zone_bins:
        b = [float(x) for x in zone_bins.split(",")]
        bin_freqs = (b[: len(b) // 2], b[len(b) // 2 :])
    return (int(v[0]), int(v[1]), int(v[2]), v[3:], bin_freqs)


# ============================================================================ drawing
class LiveView:
    """Draws a :class:`ViewState` and a :class:`~vqblur.engine.stage.tap.ColumnTap` on a rich Console.

    ``band_hz``: the width of one code row in Hz (for the row labels; 0 = row numbers), or
    ``zone_axis = (sample_rate, n_fft, bins, row_edges_hz[, bin_freqs])`` (:func:`zone_axis_of`):
    the bundle's own row edges (the labels) and the perceptual axis the engine reads the zone on
    (the outline: the rows the engine resamples for each column's knob values); ``bin_freqs``
    (centres, spacings) ``[bins]`` when the model bins are not evenly spaced (the split framing).
    ``seconds``: how much history the grid shows. ``fps``: frames per second drawn.
    """

    def __init__(self, state: ViewState, tap, *, console=None, fps: float = 6.0,
                 seconds: float = 3.0, columns_per_second: float = 300.0, band_hz: float = 0.0,
                 codebook_size: int = 256, zone_axis=None) -> None:
        if console is None:
            from rich.console import Console

            console = Console()
        self.state = state
        self.tap = tap
        self.console = console
        self.period = 1.0 / float(fps)
        self.seconds = float(seconds)
        self.cps = float(columns_per_second)
        self.band_hz = float(band_hz)
        self.rows = tap.rows
        self.zone = None
        self.edges = None
        if zone_axis is not None:
            from vqblur.engine.blur.zone import PerceptualZone

            sr, n_fft, bins, edges, *rest = zone_axis
            self.edges = [float(e) for e in edges]
            self.zone = PerceptualZone(int(sr), int(n_fft), int(bins), np.asarray(self.edges),
                                       bin_freqs=rest[0] if rest else None)
        self.styles = _Styles(int(codebook_size))
        self.frames = 0  # drawn
        self.skipped = 0  # frames the tap's writer lapped while we copied (not drawn)
        self.errors = 0
        self.last_error = ""
        self.render_s = 0.0
        self._last = None
        self._k = 1

    def usable(self) -> tuple[bool, str]:
        """Whether the full view fits the console (a terminal at least :func:`min_size`)."""
        return fits(self.console.is_terminal, tuple(self.console.size), self.rows)

    def run(self, should_stop) -> None:
        """Draw on the alternate screen every ``period`` until ``should_stop()``."""
        from rich.live import Live

        with Live(console=self.console, screen=True, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            while not should_stop():
                t0 = time.perf_counter()
                try:
                    r = self.render()
                    live.update(r, refresh=True)
                    self.frames += 1
                except Exception as exc:  # the view must never take the program down
                    self.errors += 1
                    self.last_error = repr(exc)
                self.render_s = time.perf_counter() - t0
                self.state["view_frames"] = self.frames
                self.state["view_errors"] = self.errors
                self.state["view_render_s"] = self.render_s
                time.sleep(max(0.0, self.period - self.render_s))

    def render(self):
        """One frame as a rich renderable, for the console's current size."""
        from rich.console import Group
        from rich.text import Text

        w, h = self.console.size
        mw, mh = min_size(self.rows)
        if w < mw or h < mh:
            return Text(status_text(self.state)[:max(w - 1, 1)])
        grid = self._grid(w - GRID_LABEL - GRID_RIGHT)
        if grid is None:  # lapped by the writer: keep the previous picture
            self.skipped += 1
            if self._last is not None:
                return self._last
            grid = _GridRenderable([])
        s = self.state
        sr = s["samplerate"] or 1.0
        head = Text.assemble(
            ("vqblur live", "bold"),
            f" · {s['samplerate']:.0f} Hz · {s['channels']:.0f} ch (grid: ch {s['grid_channel']:.0f}) · "
            f"block {s['host_block']:.0f} · latency {1000 * s['latency_samples'] / sr:.2f} ms "
            f"({s['latency_samples']:.0f} samples) · Ctrl-C stops",
        )
        head.no_wrap, head.overflow = True, "ellipsis"
        out = Group(head, grid, self._axis(w), self._meters(w), self._knobs(), self._load_line(),
                    self._counters())
        self._last = out
        return out

    def _grid(self, width: int):
        R, st, tap = self.rows, self.styles, self.tap
        W = max(width, 1)
        k = max(1, int(math.ceil(self.seconds * self.cps / W)))
        n = W * k
        b = np.zeros((n, R), np.int32)
        a = np.zeros((n, R), np.int32)
        z = np.zeros(n, np.float32)
        c = np.zeros(n, np.float32)
        valid = tap.latest(n, b, a, z, c)
        if valid == 0 and tap.pos > 0:
            return None
        self._k = k
        code = a[k - 1::k]  # [W, R]: the last column of each group
        changed = (b != a).reshape(W, k, R).any(axis=1)
        zg, cg = z[k - 1::k], c[k - 1::k]
        first = W - (valid // k)  # groups before this one have no data (yet)
        lo, hi, cur_rows, c_row = self._zone_rows(zg, cg, valid)
        lines = []
        for row in range(R - 1, -1, -1):
            if row % 4 == 0:
                if self.edges is not None:
                    label = f"{self.edges[row] / 1000:5.1f}k "
                else:
                    label = f"{row * self.band_hz / 1000:5.1f}k " if self.band_hz > 0 else f"{row:5d}  "
            else:
                label = " " * GRID_LABEL
            line: list[tuple[str, Any]] = [(label[:GRID_LABEL].ljust(GRID_LABEL), st.label)]
            cells: list[tuple[str, Any]] = []
            if first > 0:
                cells.append(("·" * first, st.empty))
            for g in range(first, W):
                cd = int(code[g, row])
                if changed[g, row]:
                    glyph, style = "×", st.mark[cd]
                elif row == hi[g] + 1:
                    glyph, style = "▁", st.mark[cd]
                elif row == lo[g] - 1:
                    glyph, style = "▔", st.mark[cd]
                else:
                    glyph, style = " ", st.cell[cd]
                if cells and cells[-1][1] is style:
                    cells[-1] = (cells[-1][0] + glyph, style)
                else:
                    cells.append((glyph, style))
            line.extend(cells)
            inside = bool(cur_rows[row])
            line.append(("◀" if inside and row == c_row else ("▐" if inside else " "), st.zone))
            lines.append(line)
        return _GridRenderable(lines)

    def _zone_rows(self, zg: np.ndarray, cg: np.ndarray, valid: int):
        """Per group: the lowest and highest row in the zone (R + 1 / -2 when shut); the rows in
        the current zone [R] and its centre row."""
        R = self.rows
        if self.zone is None:  # the row axis (a view without the bundle's axis)
            h = zg.astype(np.float64) * R
            cr = cg.astype(np.float64) * (R - 1)
            on = h > 0
            lo = np.where(on, np.floor(cr - h) + 1, R + 1).astype(int)
            hi = np.where(on, np.ceil(cr + h) - 1, -2).astype(int)
            ncur = zg[-1] * R if valid else 0.0
            ccur = cg[-1] * (R - 1) if valid else 0.0
            rows = np.arange(R)
            return lo, hi, (np.abs(rows - ccur) < ncur) & (ncur > 0), int(round(ccur))
        lo = np.full(len(zg), R + 1, int)
        hi = np.full(len(zg), -2, int)
        rows_now = np.zeros(R, bool)
        for g in range(len(zg)):
            self.zone.update(float(zg[g]), float(cg[g]))  # cached while the knobs stand still
            on = np.flatnonzero(self.zone.micro_rows)
            if len(on):
                lo[g], hi[g] = on[0], on[-1]
        if valid:
            self.zone.update(float(zg[-1]), float(cg[-1]))
            rows_now = self.zone.micro_rows > 0
        c_row = self.zone.centre_row(float(cg[-1])) if rows_now.any() else -1
        return lo, hi, rows_now, c_row

    def _axis(self, w: int):
        from rich.text import Text

        shown = (w - GRID_LABEL - GRID_RIGHT) * self._k / self.cps
        left = f"-{shown:.1f} s "
        mid = " × changed by the blur · ▁ ▔ zone outline · colour = code "
        right = " now"
        fill = max(w - GRID_LABEL - GRID_RIGHT - len(left) - len(mid) - len(right), 2)
        return Text(" " * GRID_LABEL + left + "─" * (fill // 2) + mid + "─" * (fill - fill // 2) + right,
                    style="dim", no_wrap=True, overflow="ellipsis")

    def _meters(self, w: int):
        from rich.text import Text

        s = self.state
        bw = max(6, (w - 2 * 36) // 2)  # each meter: 4 + bar + 31 characters of numbers
        t = Text(no_wrap=True, overflow="ellipsis")
        for name, peak, rms in (("in ", s["in_peak"], s["in_rms"]), ("out", s["out_peak"], s["out_rms"])):
            db = _db(peak)
            frac = 0.0 if db == -math.inf else (db + METER_DB) / METER_DB
            colour = "green" if db < -12 else ("yellow" if db < -3 else "red")
            t.append(f"{name} ", style="bold")
            t.append(_bar(frac, bw), style=colour)
            t.append(f" peak {db:6.1f} rms {_db(rms):6.1f} dBFS   ")
        return t

    def _knobs(self):
        from rich.text import Text

        kv = self.state.knob_values()
        t = Text("knobs ", style="bold", no_wrap=True, overflow="ellipsis")
        for name, v in kv.items():
            t.append(f"{name} ")
            t.append(f"{v:.2f}", style="bold cyan")
            t.append("  ")
        if not kv:
            t.append("(none yet)", style="dim")
        s = self.state
        pal = s.text("palette")
        if pal:
            t.append("· palette ", style="bold")
            t.append(pal, style="bold magenta")
        note = s.text("note")
        if note and time.monotonic() - s["note_t"] < NOTE_S:
            t.append("  " + note, style="bold red" if note.startswith("palette refused") else "dim")
        return t

    def _load_line(self):
        from rich.text import Text

        s = self.state
        dsp, cpu = s["dsp"], s["cpu"]
        colour = "green" if dsp < 50 else ("yellow" if dsp < 85 else "red")
        t = Text("load ", style="bold", no_wrap=True, overflow="ellipsis")
        t.append(_bar(dsp / 100.0, 10), style=colour)
        t.append(f" DSP {dsp:4.1f}% of real time · CPU {cpu:4.1f}%")
        period = s["host_block"] / (s["samplerate"] or 1.0)
        if period > 0:
            t.append(f" · worst block {1000 * s['max_chunk_s']:.2f}/{1000 * period:.2f} ms deadline")
        if s["column_p99"] > 0:
            t.append(f" · column p99 {1000 * s['column_p99']:.2f}/{1000 / self.cps:.2f} ms")
        if s["demoted"]:
            t.append(" · engine slower than real time", style="bold red")
        return t

    def _counters(self):
        from rich.text import Text

        s = self.state
        t = Text("under-runs ", style="bold", no_wrap=True, overflow="ellipsis")
        t.append(f"{s['underruns']:.0f}", style="red" if s["underruns"] else "green")
        t.append(f"  over-runs {s['overruns']:.0f}  late {s['late']:.0f}  resyncs {s['resyncs']:.0f}  "
                 f"device xruns {s['xruns']:.0f}")
        if s["midi_on"]:
            t.append(f" · MIDI {s['midi_received']:.0f} (ignored {s['midi_ignored']:.0f})")
        if s["osc_on"]:
            t.append(f" · OSC {s['osc_received']:.0f} (ignored {s['osc_ignored']:.0f})")
        t.append(f" · view {self.frames} frames", style="dim")
        return t


def fits(is_terminal: bool, size: tuple[int, int], rows: int) -> tuple[bool, str]:
    """Whether a terminal of ``size`` (width, height) can show the full view."""
    if not is_terminal:
        return False, "not a terminal"
    w, h = size
    mw, mh = min_size(rows)
    if w < mw or h < mh:
        return False, f"terminal {w}x{h} is smaller than the {mw}x{mh} the view needs"
    return True, ""


# ============================================================================ the view process
class ViewProcess:
    """The live view of a running :class:`~vqblur.engine.stage.runner.LiveRunner`, drawn by a child
    process (``python -m vqblur.engine.stage.view``) on this process's terminal.

    ``tap``: the engine's ColumnTap, created with ``shared=True``. ``knobs``: the knob names
    (shown in this order). ``publish()`` is called by the status loop; ``stop()`` ends the
    child (it restores the terminal) and frees the shared memory. ``stdout``/``size``: for
    tests, draw to that file at a forced terminal size instead of this terminal.
    """

    def __init__(self, runner, tap, *, knobs: tuple[str, ...], midi=None, osc=None,
                 fps: float = 6.0, seconds: float = 3.0, columns_per_second: float = 300.0,
                 band_hz: float = 0.0, codebook_size: int = 256, stdout=None,
                 size: tuple[int, int] | None = None, zone_axis=None) -> None:
        if tap.name is None:
            raise ValueError("the view process needs a ColumnTap made with shared=True")
        self.tap = tap
        self.rows = tap.rows
        self.state = ViewState(knobs, shared=True)
        self.publisher = ViewPublisher(runner, self.state, midi=midi, osc=osc, grid_channel=tap.channel)
        self.args = ["--fps", str(fps), "--seconds", str(seconds), "--cps", str(columns_per_second),
                     "--band-hz", str(band_hz), "--codebook-size", str(codebook_size)]
        if zone_axis is not None:
            self.args += zone_axis_args(zone_axis)
        if size is not None:
            self.args += ["--size", f"{size[0]}x{size[1]}"]
        self.stdout = stdout
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.frames = 0
        self.errors = 0
        self._returncode: int | None = None

    def usable(self) -> tuple[bool, str]:
        if self.size is not None:
            return fits(True, self.size, self.rows)
        try:
            fd = sys.stdout.fileno()
            tty = os.isatty(fd)
            size = tuple(os.get_terminal_size(fd)) if tty else (0, 0)
        except (OSError, ValueError, AttributeError):
            return False, "not a terminal"
        return fits(tty, size, self.rows)  # type: ignore[arg-type]

    def start(self) -> None:
        self.publisher.publish()
        knobs = ",".join(self.state.knobs)
        cmd = [sys.executable, "-m", "vqblur.engine.stage.view", "--tap", self.tap.name, "--state",
               self.state.name, "--knobs", knobs, *self.args]
        sys.stdout.flush()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.stdout,
                                     start_new_session=False)

    def publish(self, cpu: float | None = None, dsp: float | None = None) -> None:
        if not self.stopped:
            self.publisher.publish(cpu, dsp)

    def note(self, text: str) -> None:
        """Show a short message (a palette request's outcome) for a few seconds."""
        if not self.stopped:
            self.state.set_text("note", text)
            self.state["note_t"] = time.monotonic()

    @property
    def stopped(self) -> bool:
        """stop() has run (the shared memory is released)."""
        return self.state.name is None

    @property
    def alive(self) -> bool:
        """True while the view process runs (False once it exited, or after stop())."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else self._returncode

    def stop(self) -> None:
        if self.stopped:
            return
        p, self.proc = self.proc, None
        if p is not None:
            self.state["stop"] = 1.0
            try:
                p.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            self._returncode = p.returncode
        self.frames = int(self.state["view_frames"])
        self.errors = int(self.state["view_errors"])
        self.state.close(unlink=True)


def main(argv=None) -> int:
    """The view process: attach to the shared tap and state, draw until told to stop or the
    parent (the audio process) is gone. Ctrl-C is the parent's to handle."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vqblur.engine.stage.view")
    ap.add_argument("--tap", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--knobs", required=True)
    ap.add_argument("--fps", type=float, default=6.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--cps", type=float, default=300.0)
    ap.add_argument("--band-hz", type=float, default=0.0)
    ap.add_argument("--codebook-size", type=int, default=256)
    ap.add_argument("--zone-axis", default=None, help="SR,N_FFT,BINS,EDGE0,...: the bundle's rows and zone axis")
    ap.add_argument("--zone-bins", default=None,
                    help="C0,...,S0,...: the model bins' centres then spacings (Hz), when uneven")
    ap.add_argument("--size", default=None, help="WxH: draw at this size even if not a terminal")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _term)
    from rich.console import Console

    from vqblur.engine.stage.tap import ColumnTap

    if a.size:
        w, h = (int(v) for v in a.size.lower().split("x"))
        console = Console(force_terminal=True, width=w, height=h)
    else:
        console = Console()
    tap = ColumnTap.attach(a.tap)
    state = ViewState(tuple(k for k in a.knobs.split(",") if k), _attach=a.state)
    axis = parse_zone_axis(a.zone_axis, a.zone_bins) if a.zone_axis else None
    view = LiveView(state, tap, console=console, fps=a.fps, seconds=a.seconds,
                    columns_per_second=a.cps, band_hz=a.band_hz, codebook_size=a.codebook_size,
                    zone_axis=axis)
    parent = os.getppid()
    try:
        view.run(lambda: state["stop"] != 0 or os.getppid() != parent)
    finally:
        state["view_frames"] = view.frames
        state["view_errors"] = view.errors
    return 0


if __name__ == "__main__":
    sys.exit(main())
