"""The DSP core reads on its own: no module of ``vqblur.engine`` outside ``vqblur.engine.stage``
imports the live stage (devices, MIDI, OSC, the live view), checked in a fresh process; and the
stage's real-time priority is one public function its modules share."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dsp_core_never_imports_the_stage():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import vqblur.engine
        core = [m.name for m in pkgutil.iter_modules(vqblur.engine.__path__) if m.name != "stage"]
        for name in core:
            importlib.import_module("vqblur.engine." + name)
        stage = sorted(m for m in sys.modules if m.startswith("vqblur.engine.stage"))
        heavy = sorted(m for m in ("sounddevice", "rtmidi", "pythonosc", "rich") if m in sys.modules)
        print(core)
        assert "core" in core and "dsp" in core and "codec" in core, core
        assert not stage, stage
        assert not heavy, heavy
        """
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stage_modules_use_the_public_realtime_function():
    """No stage module reaches into another's private helpers for real-time priority."""
    stage = ROOT / "engine" / "stage"
    for p in sorted(stage.glob("*.py")):
        text = p.read_text(encoding="utf-8")
        assert "_try_realtime" not in text, p.name
    from vqblur.engine.stage import realtime

    assert callable(realtime.try_realtime) and callable(realtime.drop_realtime)
