"""`vqblur process --preset P` with a preset that names a palette renders with that palette's
tables: exactly the engine with ``load_palette`` (and not the model's own tables); a palette
that does not fit the model is refused in one line, exit 2, nothing written."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from tests.test_blur_palette_switch import _palette, _signal
from vqblur.cli import main
from vqblur.engine.bundle import default_bundle_path
from vqblur.engine.core import Engine, Params

SR = 48000


def _reverse_prior(d):
    d["log_prior"] = d["log_prior"][::-1].copy()


def test_a_presets_palette_is_played(tmp_path, capsys):
    pal = _palette(tmp_path, "pal", _reverse_prior)
    preset = tmp_path / "p.toml"
    preset.write_text(f'palette = "{pal.name}"\n[knobs]\nzone_size = 0.5\ncentre = 0.4\n')
    plain = tmp_path / "plain.toml"
    plain.write_text("[knobs]\nzone_size = 0.5\ncentre = 0.4\n")
    x = _signal(SR // 2)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    assert main(["process", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--preset", str(preset)]) == 0
    assert "palette pal" in capsys.readouterr().err
    assert main(["process", str(tmp_path / "in.wav"), str(tmp_path / "own.wav"), "--preset", str(plain), "--quiet"]) == 0
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    own, _ = sf.read(tmp_path / "own.wav", dtype="float32")
    eng = Engine(default_bundle_path(), Params(zone_size=0.5, centre=0.4))
    eng.load_palette(pal)
    assert np.array_equal(y, eng.render(x))
    assert not np.array_equal(y, own)


def test_a_palette_that_does_not_fit_is_refused(tmp_path, capsys):
    def fewer_codes(d):
        d["log_prior"] = d["log_prior"][:-1].copy()

    bad = _palette(tmp_path, "bad", fewer_codes)
    preset = tmp_path / "p.toml"
    preset.write_text(f'palette = "{bad}"\n[knobs]\nzone_size = 0.3\n')
    sf.write(tmp_path / "in.wav", _signal(SR // 4), SR, subtype="FLOAT")
    assert main(["process", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--preset", str(preset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "palette" in err[0], err
    assert not (tmp_path / "out.wav").exists()
