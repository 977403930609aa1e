"""The house's layers hold: every module's imports (module level and inside functions, read with
``ast`` as ``test_engine_no_torch.py`` reads them for torch) follow the "may import" table of
docs/ARCHITECTURE.md, and there is no circle between files or between folders.

Layers, bottom to top (the table in docs/ARCHITECTURE.md is checked against ``MAY_IMPORT``)::

    vqblur.common         the ground floor: imports no other part of vqblur
    vqblur.engine         the streaming engine's core
    vqblur.engine.stage   the live stage (runner, rings, MIDI, OSC, view) on top of the core
    vqblur.training.data  the torch-free data loaders
    vqblur.training       the model and its training (torch)
    vqblur.measure        the bench and the report (never torch)
    vqblur.export         checkpoint -> bundle (torch, onnx)
    vqblur.presets        data only
    vqblur, .commands     the CLI, on top: nothing below imports it

The root package ``vqblur`` (its ``__init__.py`` declares ``__version__`` and nothing else) is run
by every ``import vqblur.<anything>``; any module may read the version from it, and it imports
nothing.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

#: import-name prefix -> layer, longest prefix first
LAYER_OF_PREFIX = (
    ("vqblur.common", "common"),
    ("vqblur.engine.stage", "engine.stage"),
    ("vqblur.engine", "engine"),
    ("vqblur.training.data", "training.data"),
    ("vqblur.training", "training"),
    ("vqblur.measure", "measure"),
    ("vqblur.export", "export"),
    ("vqblur.presets", "presets"),
    ("vqblur.commands", "cli"),
    ("vqblur", "cli"),
)
ROOT_PACKAGE = "vqblur"
LAYERS = ("common", "engine", "engine.stage", "training.data", "training", "measure", "export",
          "presets", "cli")
#: layer -> the other layers its modules may import (a layer may always import itself)
MAY_IMPORT: dict[str, set[str]] = {
    "common": set(),
    "engine": {"common"},
    "engine.stage": {"common", "engine"},
    "training.data": {"common"},
    "training": {"common", "engine", "training.data"},
    "measure": {"common", "engine", "training.data"},
    "export": {"common", "engine", "training.data", "training"},
    "presets": set(),
    "cli": set(LAYERS) - {"cli"},
}
#: layers that never import torch
NO_TORCH = {"common", "engine", "engine.stage", "training.data", "measure"}
#: what the ground floor may import besides the standard library
COMMON_THIRD_PARTY = {"numpy", "tqdm", "pynvml"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _modules() -> dict[str, Path]:
    """Import name -> file, for every module the distribution ships (pyproject's package-dir)."""
    pkg_dirs = _pyproject()["package-dir"]
    mapped = {ROOT / d for d in pkg_dirs.values()}
    mods: dict[str, Path] = {}
    for name, d in pkg_dirs.items():
        base = ROOT / d
        for f in sorted(base.rglob("*.py")):
            rel = f.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            # a sub-folder that pyproject maps itself is read under its own name
            if any(base / Path(*rel.parts[:i]) in mapped for i in range(1, len(rel.parts))):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([name, *parts])] = f
    return mods


MODULES = _modules()


def layer_of(module: str) -> str:
    if module == ROOT_PACKAGE:
        return "root"
    for prefix, layer in LAYER_OF_PREFIX:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module}: in no layer (add it to LAYER_OF_PREFIX and docs/ARCHITECTURE.md)")


def _imports(module: str, path: Path):
    """(imported module or top-level library, line) for every import statement, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:
                sub = f"{target}.{a.name}"
                yield (sub if sub in MODULES else target), node.lineno


def _internal(target: str) -> str | None:
    """The vqblur module an import names (a name inside a module -> that module), else None."""
    if target != ROOT_PACKAGE and not target.startswith(ROOT_PACKAGE + "."):
        return None
    t = target
    while t not in MODULES and "." in t:
        t = t.rsplit(".", 1)[0]
    return t


def _graph():
    """module -> {imported vqblur module: first line}, and module -> {top-level library: line}."""
    internal: dict[str, dict[str, int]] = defaultdict(dict)
    external: dict[str, dict[str, int]] = defaultdict(dict)
    for m, f in MODULES.items():
        for target, line in _imports(m, f):
            t = _internal(target)
            if t is None:
                external[m].setdefault(target.split(".")[0], line)
            elif t != m:
                internal[m].setdefault(t, line)
    return internal, external


INTERNAL, EXTERNAL = _graph()


def _where(m: str, line: int) -> str:
    return f"{MODULES[m].relative_to(ROOT)}:{line}"


def _cycles(nodes, edges) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


# ---------------------------------------------------------------------------------------- tests


def test_the_modules_are_found():
    """The walk sees the whole distribution (a broken walk would make every other test pass)."""
    for m in ("vqblur.cli", "vqblur.common.errors", "vqblur.engine.core", "vqblur.training.train",
              "vqblur.training.data.corpus", "vqblur.measure.run", "vqblur.export.bundle_writer"):
        assert m in MODULES, m
    assert sum(len(v) for v in INTERNAL.values()) > 200
    assert all(layer_of(m) for m in MODULES)


def test_every_package_folder_is_shipped():
    """Each folder of modules has an __init__.py and is in pyproject's packages (else the wheel lacks it)."""
    packages = set(_pyproject()["packages"])
    missing = sorted(m for m, f in MODULES.items() if f.name == "__init__.py" and m not in packages)
    no_init = sorted({str(f.parent.relative_to(ROOT)) for f in MODULES.values()
                      if not (f.parent / "__init__.py").is_file()})
    assert not missing, f"packages missing from pyproject.toml [tool.setuptools] packages: {missing}"
    assert not no_init, f"folders of modules without __init__.py: {no_init}"


def test_the_layer_table_has_no_circle():
    edges = {a: set(b) for a, b in MAY_IMPORT.items()}
    assert not _cycles(LAYERS, edges)
    assert set(MAY_IMPORT) == set(LAYERS)


def test_imports_follow_the_layers():
    bad = []
    for m, targets in sorted(INTERNAL.items()):
        src = layer_of(m)
        for t, line in sorted(targets.items()):
            dst = layer_of(t)
            if dst == "root":
                continue  # the version; see the module docstring
            if src == "root":
                bad.append(f"{_where(m, line)}: the root package imports {t}")
            elif dst != src and dst not in MAY_IMPORT[src]:
                bad.append(f"{_where(m, line)}: {m} ({src}) imports {t} ({dst})")
    assert not bad, "imports against the layers (docs/ARCHITECTURE.md, 'may import'):\n" + "\n".join(bad)


def test_nothing_below_the_cli_imports_it():
    bad = [f"{_where(m, line)}: {m} imports {t}"
           for m, targets in INTERNAL.items() if layer_of(m) != "cli"
           for t, line in targets.items() if layer_of(t) == "cli"]
    assert not bad, "\n".join(bad)


def test_no_circle_between_files():
    edges = {m: set(t) for m, t in INTERNAL.items()}
    cycles = _cycles(MODULES, edges)
    msg = []
    for comp in cycles:
        inside = set(comp)
        msg.append(" <-> ".join(comp) + ":\n" + "\n".join(
            f"    {_where(m, line)} imports {t}" for m in comp
            for t, line in sorted(INTERNAL[m].items()) if t in inside))
    assert not cycles, "import circles between files:\n" + "\n".join(msg)


def test_no_circle_between_folders():
    """Folders (packages) and layers: e.g. training -> measure -> training would be one."""
    def folder(m: str) -> str:
        return m if MODULES[m].name == "__init__.py" else m.rsplit(".", 1)[0]

    for key in (folder, layer_of):
        edges: dict[str, set[str]] = defaultdict(set)
        why: dict[tuple[str, str], str] = {}
        for m, targets in INTERNAL.items():
            for t, line in targets.items():
                a, b = key(m), key(t)
                if a == b or b in ("root", ROOT_PACKAGE) or (key is folder and a.startswith(b + ".")):
                    continue  # a module's own package (its __init__ runs first anyway)
                edges[a].add(b)
                why.setdefault((a, b), f"{_where(m, line)} imports {t}")
        cycles = _cycles(set(edges) | {b for v in edges.values() for b in v}, edges)
        msg = [" <-> ".join(c) + ": " + "; ".join(why[(a, b)] for a in c for b in c if (a, b) in why)
               for c in cycles]
        assert not cycles, f"import circles between {'folders' if key is folder else 'layers'}:\n" + "\n".join(msg)


def test_torch_stays_in_training_and_export():
    bad = [f"{_where(m, line)}: {m} ({layer_of(m)}) imports {lib}"
           for m, libs in EXTERNAL.items() if layer_of(m) in NO_TORCH
           for lib, line in libs.items() if lib == "torch"]
    assert not bad, "\n".join(bad)


def test_the_ground_floor_is_light():
    std = set(sys.stdlib_module_names) | {"__future__"}
    bad = [f"{_where(m, line)}: {m} imports {lib}"
           for m, libs in EXTERNAL.items() if layer_of(m) == "common"
           for lib, line in libs.items() if lib not in std and lib not in COMMON_THIRD_PARTY]
    assert not bad, "the ground floor may import the standard library and " \
                    f"{sorted(COMMON_THIRD_PARTY)} only:\n" + "\n".join(bad)


def test_the_root_package_holds_only_the_version():
    tree = ast.parse(MODULES[ROOT_PACKAGE].read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_no_package_module_imports_the_tests_or_scripts():
    bad = [f"{_where(m, line)}: {m} imports {lib}" for m, libs in EXTERNAL.items()
           for lib, line in libs.items() if lib in ("tests", "scripts", "report")]
    assert not bad, "\n".join(bad)


def _doc_table() -> dict[str, set[str]]:
    """docs/ARCHITECTURE.md's table between the layers markers: layer -> the layers it may import."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    m = re.search(r"<!-- layers:begin.*?-->\n(.*?)<!-- layers:end -->", text, re.S)
    assert m, "docs/ARCHITECTURE.md: no <!-- layers:begin --> ... <!-- layers:end --> table"
    table: dict[str, set[str]] = {}
    for row in m.group(1).splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`"):
            continue
        names = re.findall(r"`(vqblur[\w.]*)`", cells[1])
        layers = {layer_of(n) for n in names} - {"root"}
        assert len(layers) == 1, f"docs/ARCHITECTURE.md layers table: one layer per row, got {row!r}"
        allowed = set(LAYERS) - {"cli"} if "everything" in cells[2] else \
            {layer_of(n) for n in re.findall(r"`(vqblur[\w.]*)`", cells[2])}
        table[layers.pop()] = allowed
    return table


def test_the_architecture_table_is_this_table():
    assert _doc_table() == MAY_IMPORT
