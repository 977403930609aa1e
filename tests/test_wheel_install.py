"""The wheel works on its own: build it, install it in a fresh venv, and from a folder outside the
checkout run ``vqblur report --help``, ``vqblur process`` on the shipped demo clip and
``vqblur bench --quick``.

No network and never torch: the wheel is built with ``--no-build-isolation`` from a copy of the
package folders (so the checkout gets no ``build/`` folder, and a stale one cannot leak old
modules into the wheel), and installed with ``--no-deps --no-index``. The fresh venv has no
packages of its own; a ``.pth`` line puts this venv's site-packages (numpy, onnxruntime, ...)
after it on ``sys.path``. A ``.pth`` line adds a folder, it does not run the ``.pth`` files in it,
so the checkout's editable install stays out and ``import vqblur`` finds the wheel's copy only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env, timeout=120):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    # the sources the wheel is made of: pyproject, the readme, the package folders
    src = tmp / "src"
    src.mkdir()
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = sorted({Path(d).parts[0] for d in setup["package-dir"].values()})
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "default_run", "*.egg-info")
    for top in tops:
        shutil.copytree(ROOT / top, src / top, ignore=ignore)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist, src], cwd=tmp, env=env, timeout=180)
    wheels = list(dist.glob("vqblur-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=env)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp, env=env).stdout.strip())
    (site / "zz_vqblur_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
          wheels[0]], cwd=tmp, env=env, timeout=180)
    work = tmp / "elsewhere"  # a folder outside the checkout
    work.mkdir()
    env.update(HOME=str(tmp / "home"), VQBLUR_DATA=str(tmp / "data"), MPLBACKEND="Agg")
    return {"wheel": wheels[0], "bin": venv / "bin", "py": py, "site": site, "cwd": work, "env": env}


def test_the_wheel_holds_every_module(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for m in ("vqblur/common/errors.py", "vqblur/measure/report.py", "vqblur/engine/core.py",
              "vqblur/presets/clips/demo.wav", "vqblur/presets/default_bundle/manifest.json"):
        assert m in names, m
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "report/"))]


def test_imports_come_from_the_install(installed):
    r = _run([installed["py"], "-c",
              "import vqblur, vqblur.measure.report as r, vqblur.engine.core; "
              "print(vqblur.__file__); print(r.checkout_root())"],
             cwd=installed["cwd"], env=installed["env"])
    where, checkout = r.stdout.split()
    assert Path(where).is_relative_to(installed["site"]), where
    assert checkout == "None"


def test_report_help(installed):
    r = _run([installed["bin"] / "vqblur", "report", "--help"], cwd=installed["cwd"], env=installed["env"])
    assert "usage: vqblur report" in r.stdout


def test_process_the_shipped_clip(installed):
    clip = installed["site"] / "vqblur" / "presets" / "clips" / "demo.wav"
    out = installed["cwd"] / "out.wav"
    _run([installed["bin"] / "vqblur", "process", clip, out, "--quiet"], cwd=installed["cwd"],
         env=installed["env"])
    import soundfile as sf

    y, sr = sf.read(out)
    x, _ = sf.read(clip)
    assert sr == 48000 and len(y) == len(x)


def test_bench_quick_and_report(installed):
    """The quick bench (its GM test clips rendered into a fresh $VQBLUR_DATA), then the report
    from its JSON: the builder comes from the wheel, not from a checkout."""
    import json

    cwd, env, vqblur = installed["cwd"], installed["env"], installed["bin"] / "vqblur"
    bench = cwd / "bench.json"
    _run([vqblur, "bench", "--quick", "--quiet", "--json", bench], cwd=cwd, env=env, timeout=240)
    b = json.loads(bench.read_text())
    assert Path(b["bundles"][0]["path"]).is_relative_to(installed["site"])
    r = _run([vqblur, "report", "--bench", bench, "--clips", "1", "--quiet"], cwd=cwd, env=env,
             timeout=240)
    md = cwd / "report" / "REPORT.md"  # the default output of an installed package: ./report
    assert md.is_file() and str(md) in r.stdout
