"""Effect presets: shipped ones load; a bad preset is a PresetError naming the file and key."""

import pytest

from vqblur.engine.core import Params
from vqblur.engine.presets import list_presets, load_preset
from vqblur.common.errors import PresetError, UserError


def test_shipped_presets_load():
    names = list_presets()
    for want in ("transparent", "codec", "mids", "subtle", "smear", "chaos", "air", "low-fog"):
        assert want in names
    for name in names:
        p = load_preset(name)
        assert isinstance(p.params, Params)
        assert p.path is not None and p.path.name == f"{name}.toml"
    assert "default" not in names  # a name that says what it does (zone 0 is the knobs' default)
    d = load_preset("mids")
    assert d.controller == "generic"
    assert d.params.zone_size == 0.25 and d.params.mix == 1.0


def test_shipped_presets_are_distinct_sounds():
    """No two shipped presets set the same knobs."""
    names = list_presets()
    knobs = {n: tuple(load_preset(n).params.as_dict().values()) for n in names}
    assert len(set(knobs.values())) == len(names), knobs


def test_preset_by_path_and_missing_knobs_default(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[knobs]\nzone_size = 0.7\n')
    p = load_preset(str(f))
    assert p.name == "mine" and p.params.zone_size == 0.7
    assert p.params.temperature == Params().temperature and p.controller is None


@pytest.mark.parametrize(
    "text,match",
    [
        ('[knobs]\nzone_sise = 0.3\n', r"bad\.toml: unknown knob 'knobs\.zone_sise'"),
        ('[knobs]\nmix = 1.5\n', r"bad\.toml: 'knobs\.mix' = 1\.5 is out of range"),
        ('[knobs]\ntemperature = "hot"\n', r"bad\.toml: 'knobs\.temperature' must be a number"),
        ('[knobs]\ncentre = true\n', r"bad\.toml: 'knobs\.centre' must be a number"),
        ('colour = "red"\n', r"bad\.toml: unknown key\(s\) colour"),
        ('[controller]\nmapp = "generic"\n', r"bad\.toml: unknown key\(s\) controller\.mapp"),
        ('[knobs\nzone_size = 0.3\n', r"bad\.toml: malformed TOML"),
        ('knobs = 3\n', r"bad\.toml: 'knobs' must be a table"),
    ],
)
def test_bad_preset_names_file_and_key(tmp_path, text, match):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PresetError, match=match):
        load_preset(f)


def test_unknown_name_lists_shipped_presets():
    with pytest.raises(PresetError, match=r"no such preset.*mids"):
        load_preset("no-such-preset")
    with pytest.raises(PresetError, match="not found"):
        load_preset("/nonexistent/x.toml")
    assert issubclass(PresetError, UserError)
