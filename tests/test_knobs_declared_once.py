"""Every knob is declared once (vqblur.engine.knobs.ALL); Params, the KNOBS names, the CLI flags,
preset / automation validation, the default CC map, the shipped controller maps, the live
status line and the docs tables all follow that declaration."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from vqblur.engine import knobs as K

ROOT = Path(__file__).resolve().parent.parent


def test_params_fields_are_the_declaration():
    from vqblur.engine import core
    from vqblur.engine.stage import midi

    fields = dataclasses.fields(core.Params)
    assert [f.name for f in fields] == [k.name for k in K.ALL]
    assert [f.default for f in fields] == [k.default for k in K.ALL]
    assert core.KNOBS == midi.KNOBS == K.NAMES
    p = core.Params(detail=0.25)
    assert p.as_dict() == {**{k.name: k.default for k in K.ALL}, "detail": 0.25}
    assert p.replace(detail=2.0).detail == 1.0  # clamped to the declared range
    with pytest.raises(ValueError, match="unknown knob"):
        p.replace(details=0.1)
    assert dataclasses.is_dataclass(p) and core.Params.__module__ == "vqblur.engine.core"


def test_declaration_fields():
    assert {k.smoothing for k in K.ALL} <= {"column", "sample"}
    assert K.BY_NAME["detail"].smoothing == "column" and K.BY_NAME["detail"].default == 1.0
    assert K.BY_NAME["mix"].smoothing == "sample" and K.BY_NAME["bypass"].toggle
    for k in K.ALL:
        assert k.lo == 0.0 and k.hi == 1.0 and 0 <= k.cc <= 127 and k.help and k.mapping


def _parser(command: str) -> argparse.ArgumentParser:
    import importlib

    mod = importlib.import_module(f"vqblur.commands.{command}")
    top = argparse.ArgumentParser()
    sub = top.add_subparsers()
    mod.register(sub)
    return sub.choices[command]


@pytest.mark.parametrize("command,which", [("process", K.ALL), ("demo", K.ALL), ("live", K.ALL),
                                           ("bench", K.ALL), ("blur", K.COLUMN)])
def test_every_command_has_a_flag_per_knob(command, which):
    p = _parser(command)
    flags = {o for a in p._actions for o in a.option_strings}
    for k in which:
        assert k.flag in flags, (command, k.flag)
    ns = p.parse_args(([] if command in ("demo", "live", "bench") else ["in.wav", "out.wav"])
                      + ["--detail", "0.3"])
    assert K.given_knobs(ns)["detail"] == 0.3
    with pytest.raises(SystemExit):
        p.parse_args(["in.wav", "out.wav", "--detail", "1.5"])


def test_preset_and_automation_validation_follow_the_declaration(tmp_path):
    from vqblur.engine.automation import DEFAULT_CC_MAP, parse_breakpoints
    from vqblur.engine.presets import parse_preset
    from vqblur.common.errors import PresetError, UserError

    assert parse_preset({"knobs": {"detail": 0.0}}).params.detail == 0.0
    with pytest.raises(PresetError, match=r"'knobs\.detail' = 1\.5 is out of range"):
        parse_preset({"knobs": {"detail": 1.5}}, "x.toml")
    with pytest.raises(PresetError, match="unknown knob 'knobs.wobble'.*detail"):
        parse_preset({"knobs": {"wobble": 0.5}}, "x.toml")
    a = parse_breakpoints([{"time": 0, "detail": 0.0}, {"time": 1, "detail": 1.0}])
    assert a.values_at(0.5) == {"detail": 0.5}
    with pytest.raises(UserError, match="'detail' must be a number"):
        parse_breakpoints([{"time": 0, "detail": "lots"}])
    assert DEFAULT_CC_MAP == {k.cc: k.name for k in K.ALL}


def test_controller_maps_bind_every_knob_and_generic_is_the_default_ccs():
    from vqblur.engine.stage.midi import list_controller_maps, load_controller_map

    for name in list_controller_maps():
        cm = load_controller_map(name)
        assert set(cm.bindings) == set(K.NAMES), name
    generic = load_controller_map("generic")
    assert {b.cc: k for k, b in generic.bindings.items()} == {k.cc: k.name for k in K.ALL}


def test_learn_defaults_to_every_knob_and_toggles_the_switches():
    import inspect

    from vqblur.engine.stage.midi import learn

    sig = inspect.signature(learn)
    assert tuple(sig.parameters["knobs"].default) == K.NAMES
    assert tuple(sig.parameters["toggle"].default) == K.TOGGLES


def test_status_line_shows_every_knob_and_says_when_the_blur_is_off():
    values = {k.name: k.default for k in K.ALL}
    line = K.status_text(values)
    for k in K.ALL:
        assert f"{k.label} " in line
    assert "detail 1.00" in line and "blur off" in line  # zone size 0: nothing resampled
    assert "blur on" in K.status_text({**values, "zone_size": 0.3})
    assert "byp on" in K.status_text({**values, "bypass": 1.0})


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md"])
def test_docs_tables_list_exactly_the_declared_knobs(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    m = re.search(r"<!-- knobs:begin[^>]*-->\n(.*?)\n<!-- knobs:end -->", text, re.S)
    assert m, f"{doc}: no knobs table between the knobs:begin/end markers"
    assert m.group(1) == K.docs_table(), f"{doc}: regenerate it: python -m vqblur.engine.knobs"
    names = re.findall(r"^\| `(\w+)` \|", m.group(1), re.M)
    assert tuple(names) == K.NAMES


def test_shipped_presets_set_detail():
    from vqblur.engine.presets import load_preset

    assert load_preset("mids").params.detail == 1.0
    codec = load_preset("codec").params
    assert codec.detail == 0.0 and codec.zone_size == 0.0


def test_docs_tables_are_regenerated_from_the_declaration(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- knobs:begin x -->\n| stale |\n<!-- knobs:end -->\nend\n", encoding="utf-8")
    assert K.write_docs_tables([doc]) == [doc]
    assert doc.read_text() == f"intro\n<!-- knobs:begin x -->\n{K.docs_table()}\n<!-- knobs:end -->\nend\n"
    assert K.write_docs_tables([doc]) == []  # already current
