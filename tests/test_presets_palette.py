"""A preset may name a palette (a bundle folder whose Naive Bayes tables the blur draws from):
``palette = "DIR"``, relative to the preset file's folder; anything but a non-empty string is
refused naming the file and the key."""

from __future__ import annotations

import pytest

from vqblur.common.errors import PresetError
from vqblur.engine.presets import list_presets, load_preset, parse_preset


def test_palette_is_relative_to_the_preset_file(tmp_path):
    (tmp_path / "presets").mkdir()
    f = tmp_path / "presets" / "mine.toml"
    f.write_text('palette = "../palettes/rock"\n[knobs]\nzone_size = 0.4\n')
    p = load_preset(f)
    assert p.palette == str((tmp_path / "presets" / ".." / "palettes" / "rock").absolute())
    assert p.params.zone_size == 0.4


def test_absolute_palette_and_no_palette(tmp_path):
    f = tmp_path / "abs.toml"
    f.write_text(f'palette = "{tmp_path / "pal"}"\n')
    assert load_preset(f).palette == str(tmp_path / "pal")
    g = tmp_path / "none.toml"
    g.write_text("[knobs]\nzone_size = 0.1\n")
    assert load_preset(g).palette is None
    assert all(load_preset(n).palette is None for n in list_presets())  # shipped: none


@pytest.mark.parametrize("value", ['""', "3", "true", '["a"]', "{ a = 1 }"])
def test_a_bad_palette_is_refused(tmp_path, value):
    f = tmp_path / "bad.toml"
    f.write_text(f"palette = {value}\n")
    with pytest.raises(PresetError) as e:
        load_preset(f)
    assert "bad.toml" in str(e.value) and "palette" in str(e.value)


def test_palette_in_memory_is_relative_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_preset({"palette": "p"}).palette == str(tmp_path / "p")
