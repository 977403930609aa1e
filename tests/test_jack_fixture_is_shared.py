"""The whole test session shares one JACK dummy server.

``jack_server`` is session-scoped, but a fixture imported into a test module is a separate
definition for that module: each importing module used to start its own jackd, and all of them
kept running (real-time timer threads, 375 wake-ups a second each) until the session ended, so
the later live tests ran next to half a dozen idle servers and under-ran. The fixture is
imported once, in ``tests/conftest.py``.
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "tests.jack_server":
            names.update(a.asname or a.name for a in node.names)
    return names


def test_no_test_module_imports_its_own_copy_of_the_fixture():
    offenders = [p.name for p in sorted(TESTS.glob("test_*.py")) if "jack_server" in _imported_names(p)]
    assert offenders == [], f"import jack_server only in conftest.py, not in {offenders}"
    assert "jack_server" in _imported_names(TESTS / "conftest.py")


def test_one_server_runs_for_this_session(jack_server):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    mine = [a for a in out.splitlines() if "jackd" in a and f"-n vqtest-{os.getpid()}-" in a]
    assert len(mine) == 1, mine
    assert f"-n {jack_server.name} " in mine[0] + " "
