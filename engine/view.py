"""`vqblur live --view`: a full-terminal picture of the code grid, level meters and counters.

Drawn with ``rich`` (``rich.live.Live`` on the alternate screen) by a thread of its own, a
few times a second. It only reads what the real-time threads publish anyway:

* the code columns from the engine's :class:`~vqblur.engine.tap.ColumnTap` (codes before and
  after the blur, smoothed zone knobs; written by the worker, no lock);
* the level meters from the live runner's audio rings (``LiveRunner.in_ring`` holds what the
  callback received, ``out_ring`` what it played): the view copies the last frame's worth
  of samples out of them itself, so metering costs the audio threads nothing;
* plain counters and the knob snapshot of the runner, the MIDI input and the OSC server.

The audio thread and the worker never wait for it: if the terminal is slow the view thread
blocks in its own write (Python releases the GIL there) and simply draws fewer frames. When
the terminal is too small (:func:`min_size`) or not a terminal, ``run_live`` keeps the
one-line status instead; a terminal shrunk while running shows that status line in place.

Picture: rows = frequency bands (highest at the top), columns = time (newest at the right);
each character is one code column or the last of a group of them (the last ``seconds`` fit
the width), its background colour is the code after the blur, ``×`` marks a cell the blur
changed in that group, and ``▁``/``▔`` above/below the zone draw its outline as the knobs
moved it.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np

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


class LiveView:
    """The live view of a :class:`~vqblur.engine.live.LiveRunner` and its engine's tap.

    ``band_hz``: the width of one code row in Hz (for the row labels; 0 = row numbers).
    ``seconds``: how much history the grid shows. ``fps``: frames per second drawn.
    """

    def __init__(self, runner, tap, *, midi=None, osc=None, console=None, fps: float = 6.0,
                 seconds: float = 3.0, columns_per_second: float = 300.0, band_hz: float = 0.0,
                 codebook_size: int = 256, priority: int = 0) -> None:
        if console is None:
            from rich.console import Console

            console = Console()
        self.runner = runner
        self.tap = tap
        self.midi = midi
        self.osc = osc
        self.console = console
        self.period = 1.0 / float(fps)
        self.seconds = float(seconds)
        self.cps = float(columns_per_second)
        self.band_hz = float(band_hz)
        self.rows = tap.rows
        self.priority = int(priority)
        self.styles = _Styles(int(codebook_size))
        self.frames = 0  # drawn
        self.skipped = 0  # frames the tap's writer lapped while we copied (not drawn)
        self.errors = 0
        self.last_error = ""
        self.render_s = 0.0
        self._last = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t = time.monotonic()
        self._cpu = time.process_time()
        self._busy = 0.0
        self._load = (0.0, 0.0)

    # ------------------------------------------------------------------ lifecycle
    def usable(self) -> tuple[bool, str]:
        """Whether the full view fits the console (a terminal at least :func:`min_size`)."""
        if not self.console.is_terminal:
            return False, "not a terminal"
        w, h = self.console.size
        mw, mh = min_size(self.rows)
        if w < mw or h < mh:
            return False, f"terminal {w}x{h} is smaller than the {mw}x{mh} the view needs"
        return True, ""

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vqblur-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None:
            t.join(timeout=5.0)

    def _loop(self) -> None:
        from rich.live import Live

        from vqblur.engine.live import realtime_thread

        with realtime_thread(self.priority):
            with Live(console=self.console, screen=True, auto_refresh=False,
                      redirect_stdout=False, redirect_stderr=False) as live:
                while not self._stop.wait(self.period):
                    t0 = time.perf_counter()
                    try:
                        r = self.render()
                    except Exception as exc:  # the view must never take the program down
                        self.errors += 1
                        self.last_error = repr(exc)
                        continue
                    live.update(r, refresh=True)
                    self.frames += 1
                    self.render_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ drawing
    def render(self):
        """One frame as a rich renderable, for the console's current size."""
        from rich.console import Group
        from rich.text import Text

        w, h = self.console.size
        mw, mh = min_size(self.rows)
        self._measure_load()
        if w < mw or h < mh:
            return Text(self.status_line()[:max(w - 1, 1)])
        grid = self._grid(w - GRID_LABEL - GRID_RIGHT)
        if grid is None:  # lapped by the writer: keep the previous picture
            self.skipped += 1
            if self._last is not None:
                return self._last
            grid = _GridRenderable([])
        r = self.runner
        head = Text.assemble(
            ("vqblur live", "bold"),
            f" · {r.samplerate} Hz · {r.channels} ch (grid: ch {self.tap.channel}) · block "
            f"{r.host_block or '?'} · latency {r.latency_ms:.2f} ms ({r.latency_samples} samples)"
            " · Ctrl-C stops",
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
        h = zg.astype(np.float64) * R
        cr = cg.astype(np.float64) * (R - 1)
        on = h > 0
        lo = np.where(on, np.floor(cr - h) + 1, R + 1).astype(int)  # lowest row in the zone
        hi = np.where(on, np.ceil(cr + h) - 1, -2).astype(int)  # highest row in the zone
        lines = []
        ncur = zg[-1] * R if valid else 0.0
        ccur = cg[-1] * (R - 1) if valid else 0.0
        for row in range(R - 1, -1, -1):
            if self.band_hz > 0 and row % 4 == 0:
                label = f"{row * self.band_hz / 1000:5.1f}k "
            elif self.band_hz <= 0 and row % 4 == 0:
                label = f"{row:5d}  "
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
            inside = ncur > 0 and abs(row - ccur) < ncur
            line.append(("◀" if inside and abs(row - ccur) < 0.5 else ("▐" if inside else " "), st.zone))
            lines.append(line)
        return _GridRenderable(lines)

    def _axis(self, w: int):
        from rich.text import Text

        shown = (w - GRID_LABEL - GRID_RIGHT) * getattr(self, "_k", 1) / self.cps
        left = f"-{shown:.1f} s "
        mid = " × changed by the blur · ▁ ▔ zone outline · colour = code "
        right = " now"
        fill = max(w - GRID_LABEL - GRID_RIGHT - len(left) - len(mid) - len(right), 2)
        return Text(" " * GRID_LABEL + left + "─" * (fill // 2) + mid + "─" * (fill - fill // 2) + right,
                    style="dim")

    def _levels(self) -> tuple[float, float, float, float]:
        """(input peak, input rms, output peak, output rms) over the last frame's samples."""
        r = self.runner
        m = max(64, min(int(r.samplerate * self.period), r.in_ring.capacity // 4))
        buf = np.zeros((m, r.channels), np.float32)
        res = []
        for ring, end in ((r.in_ring, r.in_ring.write_pos), (r.out_ring, r.out_ring.read_pos)):
            if end < m or not ring.read_at(end - m, buf):
                res += [0.0, 0.0]
                continue
            res += [float(np.max(np.abs(buf))), float(np.sqrt(np.mean(buf.astype(np.float64) ** 2)))]
        return tuple(res)  # type: ignore[return-value]

    def _meters(self, w: int):
        from rich.text import Text

        ip, irms, op, orms = self._levels()
        bw = max(6, (w - 2 * 36) // 2)  # each meter: 4 + bar + 31 characters of numbers
        t = Text(no_wrap=True, overflow="ellipsis")
        for name, peak, rms in (("in ", ip, irms), ("out", op, orms)):
            db = _db(peak)
            frac = 0.0 if db == -math.inf else (db + METER_DB) / METER_DB
            colour = "green" if db < -12 else ("yellow" if db < -3 else "red")
            t.append(f"{name} ", style="bold")
            t.append(_bar(frac, bw), style=colour)
            t.append(f" peak {db:6.1f} rms {_db(rms):6.1f} dBFS   " if db > -math.inf
                     else f" peak   -inf rms   -inf dBFS   ")
        return t

    def _knobs(self):
        from rich.text import Text

        kv = self.runner.knob_values or {}
        t = Text("knobs ", style="bold", no_wrap=True, overflow="ellipsis")
        for name, v in kv.items():
            t.append(f"{name} ")
            t.append(f"{v:.2f}", style="bold cyan")
            t.append("  ")
        if not kv:
            t.append("(none yet)", style="dim")
        return t

    def _measure_load(self) -> None:
        now, cpu, busy = time.monotonic(), time.process_time(), self.runner.worker_busy_s
        dt = now - self._t
        if dt >= 0.2:
            self._load = (100.0 * (busy - self._busy) / dt, 100.0 * (cpu - self._cpu) / dt)
            self._t, self._cpu, self._busy = now, cpu, busy

    def _load_line(self):
        from rich.text import Text

        r = self.runner
        dsp, cpu = self._load
        colour = "green" if dsp < 50 else ("yellow" if dsp < 85 else "red")
        t = Text("load ", style="bold", no_wrap=True, overflow="ellipsis")
        t.append(_bar(dsp / 100.0, 10), style=colour)
        t.append(f" DSP {dsp:4.1f}% of real time · CPU {cpu:4.1f}%")
        period = (r.host_block or 0) / r.samplerate
        if period > 0:
            t.append(f" · worst block {1000 * r.worker_max_chunk_s:.2f}/{1000 * period:.2f} ms deadline")
        stats = getattr(r.processor, "stats", None)
        if stats is not None and getattr(stats, "columns", 0) > 0:
            ct = stats.column_times
            k = min(stats.columns, 300, len(ct))
            recent = ct[np.arange(stats.columns - k, stats.columns) % len(ct)]
            t.append(f" · column p99 {1000 * float(np.percentile(recent, 99)):.2f}/{1000 / self.cps:.2f} ms")
        return t

    def _counters(self):
        from rich.text import Text

        r = self.runner
        t = Text("under-runs ", style="bold", no_wrap=True, overflow="ellipsis")
        t.append(str(r.underruns), style="red" if r.underruns else "green")
        t.append(f"  over-runs {r.overruns}  late {r.deadline_misses}  resyncs {r.resyncs}  "
                 f"device xruns {r.status_flags}")
        if self.midi is not None:
            t.append(f" · MIDI {self.midi.received} (ignored {self.midi.ignored})")
        if self.osc is not None:
            t.append(f" · OSC {self.osc.received} (ignored {self.osc.ignored})")
        t.append(f" · view {self.frames} frames", style="dim")
        return t

    def status_line(self) -> str:
        from vqblur.engine.live import format_status

        dsp, cpu = self._load
        return format_status(self.runner, self.midi, cpu, dsp, osc=self.osc)
