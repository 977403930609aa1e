"""The listening page: ``report/listen.html``, before/after audio of every shipped preset on a
few real recordings, each clip beside its spectrogram and the knob values.

``vqblur report`` writes it beside REPORT.md; ``vqblur report --listen-only`` writes only it
(a minute or so). The recordings are excerpts of held-out files of the real-recording test
split (:func:`vqblur.common.recordings.list_recordings`, ``sonic-pi-samples``, CC0): files no
training ever heard. Each excerpt is read, mixed to mono, resampled to the bundle's rate
(48 kHz) and rendered through the streaming engine (:class:`vqblur.engine.core.Engine`, one
thread, 512-sample blocks, latency removed, sampler seed 0) at each preset's knobs
(``presets/effects/*.toml``). The audio is written as 16-bit mono FLAC at ``audio_rate``
(default the model's 48 kHz), with a spectrogram PNG per clip (0 Hz to the Nyquist frequency
on the knobs' perceptual axis, :mod:`vqblur.measure.spectrogram`).

Files: ``OUT/listen.html`` and ``OUT/listen/<recording>__<preset>.flac|png`` (``input`` for
the excerpt itself). Before writing, the FLAC and PNG files already in ``OUT/listen/`` are
removed, so a renamed preset leaves no stale clip behind. The page checks in the browser that
every clip loads (each ``<audio>`` gets ``data-state`` "loaded" or "error"; the line at the top
counts them); ``tests/test_listen_page.py`` reads that from headless Chromium.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vqblur.common.errors import UserError

#: held-out test files used by default (whichever are in this machine's test split), in order:
#: a drum-and-melody loop, a struck bell, a snare roll
DEFAULT_RECORDINGS = ("loop_mika.flac", "perc_bell.flac", "drum_roll.flac")
DEFAULT_SECONDS = 4.0
BLOCK = 512
SEED = 0
FADE_S = 0.02  #: fade in/out of the excerpt (the cut would click)
PAGE = "listen.html"
FOLDER = "listen"


@dataclass(frozen=True)
class Excerpt:
    name: str  #: the recording's file name, e.g. "loop_mika.flac"
    label: str  #: e.g. "sonic-pi-samples/loop_mika.flac"
    start_s: float  #: where the excerpt starts in the file
    audio: np.ndarray  #: mono float32 at the bundle's rate, faded in and out


@dataclass(frozen=True)
class Clip:
    preset: str  #: "input" or a preset's name (file stem)
    title: str
    knobs: dict[str, float] | None  #: None for the input
    description: str
    audio_file: str  #: relative to OUT
    png_file: str
    level_db: float | None  #: output RMS against input RMS (None for the input)
    bytes: int


def pick_recordings(names: Sequence[str] = DEFAULT_RECORDINGS, count: int | None = None,
                    min_seconds: float = 2.0):
    """The recordings for the page: ``names`` that are in the test split (sonic-pi-samples), then
    the longest other test files, ``count`` in all (default ``len(names)``). UserError when the
    package is not installed."""
    import soundfile as sf

    from vqblur.common.recordings import list_recordings

    test = list_recordings("test", packages=("sonic-pi-samples",))
    if not test:
        raise UserError("the listening page needs the real-recording test split: the Debian package "
                        "sonic-pi-samples is not installed (scripts/setup.sh installs it)")
    count = len(names) if count is None else count
    by_name = {r.path.name: r for r in test}
    chosen = [by_name[n] for n in names if n in by_name][:count]
    if len(chosen) < count:
        rest = sorted((r for r in test if r not in chosen), key=lambda r: -sf.info(str(r.path)).duration)
        chosen += [r for r in rest if sf.info(str(r.path)).duration >= min_seconds][: count - len(chosen)]
    return chosen


def load_excerpt(path: Path, sr: int, seconds: float) -> tuple[np.ndarray, float]:
    """``seconds`` of ``path`` from its first sound (the envelope within 40 dB of the peak), mono,
    resampled to ``sr``, faded in and out: ``(audio float32, start in s)``."""
    import soundfile as sf
    import soxr

    x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if file_sr != sr:
        x = soxr.resample(x, file_sr, sr).astype(np.float32)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    start = 0
    if peak > 0:
        start = max(0, int(np.argmax(np.abs(x) >= peak * 0.01)) - int(0.01 * sr))
    x = np.array(x[start : start + int(round(seconds * sr))], dtype=np.float32)
    n = min(int(FADE_S * sr), len(x) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x, start / sr


def render(bundle, params, x: np.ndarray, seed: int = SEED) -> np.ndarray:
    """``x`` through the streaming engine at ``params``, latency removed, same length."""
    from vqblur.measure.harness import model_engine, render_aligned

    return render_aligned(model_engine(bundle, params, threads=1, seed=seed), x, BLOCK)


def level_db(x: np.ndarray, y: np.ndarray) -> float:
    rx = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    ry = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return 20.0 * float(np.log10((ry + 1e-12) / (rx + 1e-12)))


def write_flac(path: Path, y: np.ndarray, sr: int, audio_rate: int) -> int:
    """16-bit mono FLAC at ``audio_rate`` (resampled from ``sr`` when they differ); its size."""
    import soundfile as sf
    import soxr

    if audio_rate != sr:
        y = soxr.resample(y, sr, audio_rate)
    sf.write(str(path), np.clip(y, -1.0, 1.0), audio_rate, format="FLAC", subtype="PCM_16")
    return path.stat().st_size


def write_png(path: Path, y: np.ndarray, sr: int, title: str) -> None:
    """A small spectrogram picture (0 s to the end, 0 Hz to sr/2 on the knob axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vqblur.measure.spectrogram import draw_spectrogram

    fig, ax = plt.subplots(figsize=(4.6, 1.9), dpi=100)
    draw_spectrogram(ax, y, sr, nfft=2048, hop=512, label=False)
    ax.set_title(title, fontsize=8, loc="left")
    ax.set_xlabel("s", fontsize=7, labelpad=1)
    ax.set_ylabel("Hz", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=7, pad=1)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    # a 64-colour palette: a third of the RGBA file's size, no visible change on this colour map
    from PIL import Image

    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
            str(path), format="PNG", optimize=True)


def _knob_text(knobs: dict[str, float]) -> str:
    from vqblur.engine import knobs as K

    parts = []
    for name, v in knobs.items():
        text = f"{html.escape(name)}&nbsp;{v:g}"
        d = K.BY_NAME[name].default if name in K.BY_NAME else None
        parts.append(f"<b>{text}</b>" if d is not None and v != d else text)
    return " &middot; ".join(parts)


def page_html(sections: list[tuple[Excerpt, list[Clip]]], bundle_label: str, seconds: float,
              audio_rate: int, sr: int, total_bytes: int) -> str:
    """The page: one section per recording, one row per clip (name and knobs, audio, picture)."""
    from vqblur.common.freqaxis import KNOB_AXIS_BREAK_HZ

    rows_html = []
    for ex, clips in sections:
        rows = []
        for c in clips:
            what = f"<p class=d>{html.escape(c.description)}</p>" if c.description else ""
            if c.knobs is not None:
                what += (f"<p class=k>{_knob_text(c.knobs)}</p>"
                         f"<p class=l>level {c.level_db:+.1f} dB against the input</p>")
            rows.append(
                f"<tr><td class=name><h3>{html.escape(c.title)}</h3>{what}</td>"
                f"<td><audio controls preload=metadata src=\"{html.escape(c.audio_file)}\" "
                f"data-state=pending></audio><p class=l>{c.bytes / 1024:.0f} kB</p></td>"
                f"<td><img src=\"{html.escape(c.png_file)}\" width=460 height=190 "
                f"alt=\"spectrogram: {html.escape(ex.name)}, {html.escape(c.title)}\"></td></tr>")
        rows_html.append(
            f"<section><h2>{html.escape(ex.label)}</h2>"
            f"<p class=l>{len(ex.audio) / sr:.1f} s from {ex.start_s:.2f} s</p>"
            f"<table>{''.join(rows)}</table></section>")
    script = """
<script>
(function () {
  var clips = Array.prototype.slice.call(document.querySelectorAll('audio'));
  var status = document.getElementById('audio-status');
  function update() {
    var loaded = clips.filter(function (a) { return a.dataset.state === 'loaded'; }).length;
    var failed = clips.filter(function (a) { return a.dataset.state === 'error'; });
    status.dataset.loaded = loaded;
    status.dataset.failed = failed.length;
    status.textContent = failed.length
      ? failed.length + ' of ' + clips.length + ' clips could not be played by this browser: ' +
        failed.map(function (a) { return a.getAttribute('src'); }).join(', ')
      : loaded + ' of ' + clips.length + ' clips loaded';
    status.className = failed.length ? 'bad' : '';
  }
  clips.forEach(function (a) {
    function mark() {
      a.dataset.state = a.error ? 'error' : (a.readyState >= 1 ? 'loaded' : 'pending');
      a.dataset.readyState = a.readyState;
      a.dataset.duration = isFinite(a.duration) ? a.duration.toFixed(2) : '';
      update();
    }
    a.addEventListener('loadedmetadata', mark);
    a.addEventListener('error', mark);
    if (a.readyState >= 1 || a.error) { mark(); }
  });
  update();
})();
</script>"""
    style = """
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1180px; padding: 0 1em;
       color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.3em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 0; }
table { border-collapse: collapse; width: 100%; }
td { vertical-align: middle; padding: 4px 8px; border-bottom: 1px solid #eee; }
td.name { width: 30%; }
p { margin: 0.3em 0; }
p.d { font-size: 0.85em; }
p.k { font-size: 0.8em; color: #444; font-family: ui-monospace, monospace; }
p.l { font-size: 0.8em; color: #777; }
audio { width: 260px; }
#audio-status { font-size: 0.85em; color: #2a6; }
#audio-status.bad { color: #c22; font-weight: bold; }
code { background: #f3f3f3; padding: 0 3px; }
</style>"""
    n_clips = sum(len(c) for _, c in sections)
    intro = (
        f"<p>Real recordings the model never heard: excerpts of held-out files of the "
        f"real-recording test split (Debian package <code>sonic-pi-samples</code>, CC0; "
        f"<code>vqblur.common.recordings</code>), {seconds:g} s each, mono, rendered through the "
        f"streaming engine at the model's {sr} Hz with {html.escape(bundle_label)}, one row per "
        f"shipped preset (<code>presets/effects/*.toml</code>; knobs that differ from their "
        f"defaults in bold), sampler seed {SEED}. The audio is 16-bit FLAC at {audio_rate} Hz "
        f"({n_clips} clips, {total_bytes / 1e6:.1f} MB). The pictures run from 0 Hz to "
        f"{audio_rate / 2000:g} kHz on the knobs' perceptual axis (linear below "
        f"{KNOB_AXIS_BREAK_HZ:g} Hz, log above), -100 to 0 dB re a full-scale sine.</p>"
        f"<p class=l>Regenerate: <code>vqblur report --listen-only</code> "
        f"(<code>vqblur.measure.listen</code>).</p>")
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            f"<title>vqblur: listen</title>{style}</head><body>"
            f"<h1>vqblur: listen</h1>{intro}<p id=audio-status>checking the clips...</p>"
            + "".join(rows_html) + script + "\n</body></html>\n")


def build_listen_page(out_dir: str | Path, bundle=None, presets: Sequence[str] | None = None,
                      recordings: Sequence[str] = DEFAULT_RECORDINGS, count: int | None = None,
                      seconds: float = DEFAULT_SECONDS, audio_rate: int | None = None,
                      log: Callable[[str], None] = lambda s: None) -> Path:
    """Render the clips and write ``out_dir/listen.html`` (+ ``out_dir/listen/``); returns the
    page's path. ``bundle``: a folder or a loaded Bundle (default the shipped one); ``presets``:
    names in presets/effects/ (default all); ``recordings``/``count``: see
    :func:`pick_recordings`; ``audio_rate``: the FLAC files' rate (default the bundle's)."""
    from vqblur.engine.bundle import Bundle, default_bundle_path, load_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.presets import list_presets, load_preset

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle or default_bundle_path())
    sr = int(bundle.sample_rate)
    audio_rate = int(audio_rate or sr)
    names = list(presets) if presets is not None else list_presets()
    if not names:
        raise UserError("no presets to render (presets/effects/ is empty)")
    loaded = [(n, load_preset(n)) for n in names]
    recs = pick_recordings(recordings, count)
    out = Path(out_dir)
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("*.flac")) + list(folder.glob("*.png")):
        old.unlink()
    sections = []
    total = 0
    for rec in recs:
        x, start = load_excerpt(rec.path, sr, seconds)
        stem = rec.path.stem
        ex = Excerpt(rec.path.name, rec.name, start, x)
        clips = []
        for preset, p in [("input", None)] + loaded:
            title = "input" if p is None else (
                p.name if p.name.lower() == preset.lower() else f"{p.name} ({preset})")
            log(f"listen: {rec.path.name}: {title}")
            y = x if p is None else render(bundle, p.params, x)
            base = f"{stem}__{preset}"
            size = write_flac(folder / f"{base}.flac", y, sr, audio_rate)
            write_png(folder / f"{base}.png", y, sr, f"{stem}: {title}")
            total += size
            clips.append(Clip(preset, title, None if p is None else p.params.as_dict(),
                              "the excerpt as the engine receives it" if p is None else p.description,
                              f"{FOLDER}/{base}.flac", f"{FOLDER}/{base}.png",
                              None if p is None else level_db(x, y), size))
        sections.append((ex, clips))
    label = f"the bundle {bundle.root.name}"
    if Path(bundle.root).resolve() == Path(default_bundle_path()).resolve():
        label = "the shipped default bundle"
    page = out / PAGE
    page.write_text(page_html(sections, label, seconds, audio_rate, sr, total), encoding="utf-8")
    meta = {"recordings": [s[0].label for s in sections], "presets": names, "seconds": seconds,
            "audio_rate": audio_rate, "bytes": total, "params_default": Params().as_dict()}
    (folder / "clips.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log(f"listen: wrote {page} ({total / 1e6:.1f} MB of audio)")
    return page
