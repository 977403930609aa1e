"""Effect presets: TOML files of knob values (and optionally a controller map to use).

Shipped presets live in ``presets/effects/<name>.toml`` (package ``vqblur.presets``); a preset
is chosen by name (``"smear"``) or by path (``"./my.toml"``). Format::

    name = "Smear"                 # optional, shown to the user
    description = "..."            # optional
    palette = "../palettes/mine"   # optional: a bundle folder whose Naive Bayes tables the
                                   # blur draws from (a *palette*, e.g. from `vqblur make-bundle
                                   # --palette-only`), relative to the preset file's folder.
                                   # `vqblur live` switches to it when the preset is chosen (at
                                   # start, or by OSC /vqblur/preset); a preset without one
                                   # leaves the palette as it is. This module only records the
                                   # path (``Preset.palette``, absolute); the engine checks it

    [knobs]                        # every key optional; missing knobs keep Params() defaults
    zone_size = 0.5                # each a number in 0..1 (docs/ARCHITECTURE.md "Knobs");
    temperature = 0.45             # the knobs are those declared in vqblur.engine.knobs
    centre = 0.4
    mix = 1.0
    bypass = 0.0
    detail = 1.0

    [controller]                   # optional
    map = "generic"                # a map name in presets/controllers/ (or a path), used by
                                   # `vqblur live`; this module only records the reference

Anything else (an unknown key or table, a value outside 0..1, a non-number, malformed TOML)
raises :class:`vqblur.common.errors.PresetError` naming the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from vqblur.engine import knobs as _knobs
from vqblur.engine.core import Params
from vqblur.common.errors import PresetError

TOP_KEYS = {"name", "description", "knobs", "controller", "palette"}
CONTROLLER_KEYS = {"map"}


@dataclass(frozen=True)
class Preset:
    name: str
    params: Params
    description: str = ""
    controller: str | None = None  # controller map name or path (presets/controllers/)
    path: Path | None = None
    palette: str | None = None  # a palette bundle folder (absolute; None = no palette named)


def effects_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("vqblur.presets") / "effects"))


def list_presets() -> list[str]:
    d = effects_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def resolve_preset_path(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.suffix == ".toml" or "/" in s or p.exists():
        if p.is_dir():
            raise PresetError(f"{p}: is a folder, not a preset file")
        if not p.is_file():
            raise PresetError(f"{p}: preset file not found")
        return p
    cand = effects_dir() / f"{s}.toml"
    if not cand.is_file():
        known = ", ".join(list_presets()) or "(none shipped)"
        raise PresetError(f"{s}: no such preset; shipped presets: {known} (or give a path to a .toml)")
    return cand


def parse_preset(data: dict, path: str | Path = "<memory>", default_name: str = "preset") -> Preset:
    where = str(path)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise PresetError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a preset has "
            f"{', '.join(sorted(TOP_KEYS))}"
        )
    name = data.get("name", default_name)
    desc = data.get("description", "")
    if not isinstance(name, str):
        raise PresetError(f"{where}: key 'name' must be a string")
    if not isinstance(desc, str):
        raise PresetError(f"{where}: key 'description' must be a string")
    knobs = data.get("knobs", {})
    if not isinstance(knobs, dict):
        raise PresetError(f"{where}: 'knobs' must be a table ([knobs])")
    values = {}
    for k, v in knobs.items():
        if k not in _knobs.BY_NAME:
            raise PresetError(f"{where}: unknown knob 'knobs.{k}'; knobs are {', '.join(_knobs.NAMES)}")
        if not isinstance(v, (int, float)):  # TOML: no other number types
            v = str(v)  # (refused below, with its repr)
        try:
            values[k] = _knobs.check_value(k, v)
        except ValueError as exc:
            raise PresetError(f"{where}: {str(exc).replace(repr(k), repr('knobs.' + k), 1)}") from None
    controller = None
    if "controller" in data:
        c = data["controller"]
        if not isinstance(c, dict):
            raise PresetError(f"{where}: 'controller' must be a table ([controller])")
        bad = set(c) - CONTROLLER_KEYS
        if bad:
            raise PresetError(f"{where}: unknown key(s) controller.{', controller.'.join(sorted(bad))}")
        if "map" in c:
            if not isinstance(c["map"], str) or not c["map"]:
                raise PresetError(f"{where}: 'controller.map' must be a controller map name")
            controller = c["map"]
    palette = None
    if "palette" in data:
        pv = data["palette"]
        if not isinstance(pv, str) or not pv.strip():
            raise PresetError(f"{where}: 'palette' must be the path of a bundle folder (a string)")
        pp = Path(pv).expanduser()
        if not pp.is_absolute():  # relative to the preset file's folder
            base = Path(path).parent if where != "<memory>" else Path.cwd()
            pp = base / pp
        palette = str(pp.absolute())
    return Preset(name=name, params=Params(**values), description=desc, controller=controller,
                  path=Path(path) if where != "<memory>" else None, palette=palette)


def load_preset(name_or_path: str | Path) -> Preset:
    """Load a shipped preset by name or any preset file by path. Raises PresetError."""
    p = resolve_preset_path(name_or_path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PresetError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is fine
    except UnicodeDecodeError as exc:
        raise PresetError(f"{p}: not a text (UTF-8) TOML file ({exc.reason} at byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{p}: malformed TOML ({exc})") from None
    return parse_preset(data, p, default_name=p.stem)
