"""The listening page (report/listen.html, `vqblur report --listen-only`): every clip on it exists
and decodes, it shows every shipped preset, it stays a few MB, and headless Chromium renders it
(a screenshot that is not blank) and loads every <audio> (the page's own script marks each one
"loaded" or "error"; a damaged file is caught)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "report" / "listen.html"
MAX_BYTES = 7_000_000  # audio + pictures committed with the page (5.7 MB with 8 presets)
REGENERATE = "regenerate it with `vqblur report --listen-only`"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no chromium (scripts/setup.sh installs "
                                    "it with the dev extra)")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.audio: list[dict[str, str]] = []
        self.img: list[dict[str, str]] = []
        self.status: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "audio":
            self.audio.append(a)
        elif tag == "img":
            self.img.append(a)
        elif a.get("id") == "audio-status":
            self.status = a


def _parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def _run_chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", "--mute-audio", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)


def _loaded_in_browser(page: Path, tmp_path: Path) -> _Page:
    r = _run_chromium(page, tmp_path, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    return _parse(r.stdout)


# ------------------------------------------------------------------ the committed page
@pytest.fixture(scope="module")
def committed():
    if not PAGE.is_file():
        pytest.fail(f"{PAGE} is missing; {REGENERATE}")
    return _parse(PAGE.read_text(encoding="utf-8"))


def test_every_clip_exists_decodes_and_stays_small(committed):
    assert len(committed.audio) >= 6 and len(committed.img) == len(committed.audio)
    total = 0
    for a, img in zip(committed.audio, committed.img):
        audio, png = PAGE.parent / a["src"], PAGE.parent / img["src"]
        assert audio.is_file() and png.is_file(), (audio, png)
        y, sr = sf.read(str(audio), dtype="float32", always_2d=True)
        assert y.shape[1] == 1 and sr >= 24000, (audio, y.shape, sr)  # mono
        assert 3.5 <= len(y) / sr <= 6.5, (audio, len(y) / sr)
        assert np.isfinite(y).all() and np.sqrt(np.mean(y ** 2)) > 1e-4, audio  # not silent
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        total += audio.stat().st_size + png.stat().st_size
    assert total <= MAX_BYTES, f"the listening page's files are {total / 1e6:.1f} MB"
    on_disk = {p.name for p in (PAGE.parent / "listen").iterdir() if p.suffix in (".flac", ".png")}
    named = {Path(a["src"]).name for a in committed.audio} | {Path(i["src"]).name for i in committed.img}
    assert on_disk == named, f"files in report/listen/ the page does not show: {sorted(on_disk - named)}"


def test_page_shows_every_shipped_preset(committed):
    from vqblur.engine.presets import list_presets

    meta = json.loads((PAGE.parent / "listen" / "clips.json").read_text())
    assert meta["presets"] == list_presets(), f"the presets changed since the page was made; {REGENERATE}"
    shown = {Path(a["src"]).stem.split("__", 1)[1] for a in committed.audio}
    assert shown == set(list_presets()) | {"input"}


@needs_chromium
def test_chromium_renders_the_page(tmp_path):
    shot = tmp_path / "shot.png"
    r = _run_chromium(PAGE, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    px = mpimg.imread(str(shot))[..., :3]
    assert px.shape[0] >= 1000 and px.shape[1] >= 1200
    assert px.std() > 0.1, "the screenshot is blank"
    dark = (px.mean(axis=2) < 0.5).mean()
    assert dark > 0.05, f"only {dark:.1%} of the screenshot is ink: the pictures did not render"
    colourful = (px.max(axis=2) - px.min(axis=2) > 0.3).mean()
    assert colourful > 0.02, "no spectrogram colours in the screenshot"


@needs_chromium
def test_chromium_loads_every_audio(committed, tmp_path):
    dom = _loaded_in_browser(PAGE, tmp_path)
    assert len(dom.audio) == len(committed.audio)
    bad = [a["src"] for a in dom.audio if a.get("data-state") != "loaded"]
    assert not bad, f"the browser could not load {bad}"
    for a in dom.audio:
        y = sf.info(str(PAGE.parent / a["src"]))
        assert int(a["data-ready-state"]) >= 1
        assert float(a["data-duration"]) == pytest.approx(y.duration, abs=0.05)
    assert dom.status.get("data-failed") == "0"
    assert dom.status.get("data-loaded") == str(len(dom.audio))


# ------------------------------------------------------------------ the generator
@pytest.fixture(scope="module")
def small_page(tmp_path_factory):
    from vqblur.common.recordings import list_recordings
    from vqblur.measure.listen import build_listen_page

    if not list_recordings("test", packages=("sonic-pi-samples",)):
        pytest.skip("sonic-pi-samples is not installed")
    out = tmp_path_factory.mktemp("listen")
    (out / "listen").mkdir()
    (out / "listen" / "old__gone.flac").write_bytes(b"stale")  # a renamed preset's clip
    page = build_listen_page(out, presets=["codec", "smear"], count=1, seconds=1.0)
    return page


def test_generator_writes_clips_pictures_and_knobs(small_page):
    from vqblur.engine.presets import load_preset

    html = small_page.read_text(encoding="utf-8")
    p = _parse(html)
    assert len(p.audio) == 3 and len(p.img) == 3  # input, codec, smear
    assert not (small_page.parent / "listen" / "old__gone.flac").exists()
    for a in p.audio:
        y, sr = sf.read(str(small_page.parent / a["src"]))
        assert y.ndim == 1 and sr == 48000 and abs(len(y) - sr) <= 1
    smear = load_preset("smear").params
    assert f"zone_size&nbsp;{smear.zone_size:g}" in html
    assert "vqblur report --listen-only" in html
    x = sf.read(str(small_page.parent / p.audio[0]["src"]))[0]
    codec = sf.read(str(small_page.parent / p.audio[1]["src"]))[0]
    assert not np.array_equal(x, codec)  # rendered, not copied


@needs_chromium
def test_chromium_reports_a_damaged_clip(small_page, tmp_path):
    copy = tmp_path / "page"
    shutil.copytree(small_page.parent, copy)
    page = copy / small_page.name
    p = _parse(page.read_text(encoding="utf-8"))
    (copy / p.audio[1]["src"]).write_bytes(b"fLaC" + b"\x00" * 64)
    dom = _loaded_in_browser(page, tmp_path)
    states = {a["src"]: a.get("data-state") for a in dom.audio}
    assert states[p.audio[1]["src"]] == "error", states
    assert states[p.audio[0]["src"]] == "loaded", states
    assert dom.status.get("data-failed") == "1"


def test_report_listen_only_builds_just_the_page(tmp_path, monkeypatch, capsys):
    import vqblur.measure.listen as listen
    import vqblur.measure.report as report
    from vqblur.cli import main

    calls = []
    monkeypatch.setattr(listen, "build_listen_page",
                        lambda out, bundle=None, log=None: calls.append(out) or out / "listen.html")
    monkeypatch.setattr(report, "build_report", lambda *a, **k: pytest.fail("REPORT.md was built"))
    assert main(["report", "--listen-only", "--out", str(tmp_path), "--quiet"]) == 0
    assert calls == [tmp_path] and f"wrote {tmp_path / 'listen.html'}" in capsys.readouterr().out
    assert main(["report", "--listen-only", "--no-listen"]) == 2
