"""The README's set-up paragraph matches scripts/setup.sh: every Debian package the script
installs is named, and the README says once that `vqblur` lives in the venv."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_packages() -> set[str]:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    found = re.findall(r"pkgs\+?=\(([^)]*)\)", text)
    assert found, "no pkgs=(...) in scripts/setup.sh"
    return {p for group in found for p in group.split()}


def test_readme_names_every_package_setup_installs():
    readme = (ROOT / "README.md").read_text()
    para = readme[readme.index("Both install the Debian packages"):]
    para = para[: para.index("\n\n")]
    named = set(re.findall(r"`([a-z0-9][a-z0-9.+-]*)`", para))
    missing = _setup_packages() - named
    assert not missing, f"README's package list lacks {sorted(missing)}"
    assert "tmux" in named and "chromium" in named


def test_readme_says_where_vqblur_is():
    readme = (ROOT / "README.md").read_text()
    assert "source .venv/bin/activate" in readme
    # the command examples then read as written: no example mixes in the venv path
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert not [b for b in blocks if ".venv/bin/vqblur" in b]
