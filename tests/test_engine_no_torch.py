"""The engine, the measurement package and the CLI's live/process paths never load torch (checked in a fresh process)."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_engine_and_cli_paths_do_not_import_torch():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        loaded = []

        def load(names):
            for name in names:
                try:
                    importlib.import_module(name)
                    loaded.append(name)
                except ModuleNotFoundError as exc:
                    if exc.name != name:  # a missing dependency is a failure; a missing module is not
                        raise

        import vqblur.engine
        load([m.name for m in pkgutil.walk_packages(vqblur.engine.__path__, "vqblur.engine.")])
        # the runtime never imports the measurement package
        assert not [m for m in sys.modules if m.startswith("vqblur.measure")], "the engine imports vqblur.measure"
        import vqblur.measure
        load(["vqblur.measure." + m.name for m in pkgutil.iter_modules(vqblur.measure.__path__)])
        load(["vqblur.commands.process", "vqblur.commands.live", "vqblur.commands.bench", "vqblur.cli"])
        # the CLI's parser registers every command: building it must not load torch either
        from vqblur.cli import build_parser
        build_parser()
        assert "vqblur.measure.run" in loaded and "vqblur.engine.core" in loaded and "vqblur.commands.process" in loaded, loaded
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print("LOADED", loaded)
        assert not bad, bad
        """
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
