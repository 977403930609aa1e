"""scripts/setup.sh keeps apt's and debconf's chatter ("debconf: delaying package configuration,
since apt-utils is not installed") off the terminal when the install works, and shows all of it
when it fails. apt-get and dpkg-query are stand-ins on PATH here; the script is the real one."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE_ERR = "debconf: delaying package configuration, since apt-utils is not installed"
NOISE_OUT = "Selecting previously unselected package jackd2."


def _exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def checkout(tmp_path):
    """A copy of setup.sh in a folder whose venv is already installed (only apt is exercised)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / ".venv" / "bin").mkdir(parents=True)
    _exe(repo / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")
    stamp = repo / ".venv" / ".vqblur-installed-engine"
    stamp.touch()
    os.utime(stamp, (2_000_000_000, 2_000_000_000))  # newer than pyproject.toml
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "apt-calls"
    _exe(bin_ / "dpkg-query", "#!/bin/sh\nexit 1\n")  # nothing is installed
    _exe(bin_ / "sudo", '#!/bin/sh\nexec "$@"\n')
    _exe(bin_ / "apt-get", f"""#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> {calls}
echo "{NOISE_OUT}"
echo "{NOISE_ERR}" >&2
exit ${{FAKE_APT_RC:-0}}
""")
    env = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}", TMPDIR=str(tmp_path))
    return repo, env, calls


def test_apt_noise_stays_off_the_terminal(checkout):
    repo, env, calls = checkout
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "debconf" not in r.stdout + r.stderr and NOISE_OUT not in r.stdout + r.stderr
    assert r.stdout.startswith("setup: installing Debian packages: jackd2 ")
    assert r.stderr == ""
    made = calls.read_text().splitlines()
    assert made[0].startswith("noninteractive update") and made[1].startswith("noninteractive install -y")
    assert not list(Path(env["TMPDIR"]).glob("vqblur-apt.*"))  # its log is removed on success


def test_apt_failure_shows_the_whole_log(checkout):
    repo, env, _ = checkout
    env["FAKE_APT_RC"] = "100"
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert NOISE_ERR in r.stderr and NOISE_OUT in r.stderr
    assert "setup: apt-get update failed" in r.stderr
