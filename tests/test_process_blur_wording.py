"""`vqblur process` says "blur off" when the zone is closed (zone size 0: nothing is
resampled), "blur on" with the zone size when it is open, "automated" when the automation
moves it."""

import subprocess
import sys

import numpy as np
import soundfile as sf

from vqblur.commands.process import blur_state
from vqblur.engine.automation import parse_breakpoints


def test_wording():
    assert blur_state(True, 0.0).startswith("blur off (zone size 0: no code is resampled")
    assert blur_state(True, 0.25) == "blur on (zone size 0.25)"
    assert blur_state(False, 0.25).startswith("blur unavailable")
    moving = parse_breakpoints([{"time": 0, "zone_size": 0}, {"time": 1, "zone_size": 0.8}], "t")
    assert blur_state(True, 0.0, moving) == "blur automated (zone size 0..0.8)"
    closed = parse_breakpoints([{"time": 0, "zone_size": 0, "mix": 0.5}], "t")
    assert blur_state(True, 0.0, closed).startswith("blur off")
    other = parse_breakpoints([{"time": 0, "mix": 0.5}], "t")
    assert blur_state(True, 0.4, other) == "blur on (zone size 0.4)"


def test_process_at_the_knob_defaults_says_blur_off(tmp_path):
    src, out = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, (0.1 * np.sin(np.arange(12000) * 0.05)).astype(np.float32), 48000)
    r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(src), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "blur off (zone size 0" in r.stderr and "blur on" not in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(src), str(out),
                        "--zone-size", "0.3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "blur on (zone size 0.3)" in r.stderr, r.stderr
