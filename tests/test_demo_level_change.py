"""`vqblur demo` prints the output level change (output RMS against input RMS, dB) for the
zone-0 and the blurred render, and the README shows that line."""

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main
from vqblur.commands.demo import level_change_db

ROOT = Path(__file__).resolve().parents[1]


def test_level_change_db():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(48000).astype(np.float32) * 0.1
    assert level_change_db(x, x) == pytest.approx(0.0, abs=1e-9)
    assert level_change_db(x, 0.5 * x) == pytest.approx(-6.0206, abs=1e-3)
    assert level_change_db(x, -2.0 * x) == pytest.approx(6.0206, abs=1e-3)
    assert level_change_db(x, np.zeros_like(x)) < -100


def test_demo_prints_the_level_change_of_what_it_wrote(tmp_path, capsys):
    bundle = make_toy_bundle(tmp_path / "bundle")
    out = tmp_path / "out"
    assert main(["demo", "--bundle", str(bundle), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    m = re.search(r"^level\s+zone 0 \(detail 0\) ([+-]\d+\.\d) dB, blurred ([+-]\d+\.\d) dB \(output RMS against "
                  r"input RMS\)$", text, re.M)
    assert m, text
    x, _ = sf.read(out / "demo_input.wav")
    z, _ = sf.read(out / "demo_zone0.wav")
    b, _ = sf.read(out / "demo_blurred.wav")
    # the printed figures are those of the written files (16-bit rounding aside)
    assert float(m[1]) == pytest.approx(level_change_db(x, z), abs=0.06)
    assert float(m[2]) == pytest.approx(level_change_db(x, b), abs=0.06)


def test_readme_shows_the_level_line():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^level\s+zone 0 \(detail 0\) [+-]\d+\.\d dB, blurred [+-]\d+\.\d dB", readme, re.M), \
        "README's demo output has no level line"
