"""Real recordings that Debian packages ship, and their fixed train/test split.

Used by training (the ``recordings`` data source) and by ``vqblur bench`` (the real-recording
test set), so both agree on which *whole files* the model never hears. No torch here.

Sources (Debian packages, installed by ``scripts/setup.sh``):

* ``sonic-pi-samples`` — CC0 recordings under ``/usr/share/sonic-pi/samples`` (drums, guitar,
  bass, ambient, vinyl, loops, tabla, ...);
* ``hydrogen-drumkits`` — drum kits under ``/usr/share/hydrogen/data/drumkits``.

The split is by file name (a hash of the path relative to its package root), so it does not
depend on the order files are listed in, or on which other files exist:
``sha1(relative path) mod 5 == 0`` is *test* (about 20 % of the files), everything else is
*train*. For hydrogen, whole kits are held out the same way (hash of the kit folder), so no
hit of a test kit is heard in training. Other packaged audio stays out of training entirely.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

SONIC_PI_ROOT = Path("/usr/share/sonic-pi/samples")
HYDROGEN_ROOT = Path("/usr/share/hydrogen/data/drumkits")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SPLITS = ("train", "test")
TEST_MODULUS = 5


@dataclass(frozen=True)
class Recording:
    """One packaged audio file: where it is, which package, and its split."""

    path: Path
    package: str  # "sonic-pi-samples" | "hydrogen-drumkits"
    key: str  # the name the split hashes (relative path, or kit folder)
    split: str  # "train" | "test"

    @property
    def name(self) -> str:
        return f"{self.package}/{self.path.name}" if self.package == "sonic-pi-samples" else \
            f"{self.package}/{self.key}/{self.path.name}"


def split_of(key: str) -> str:
    """'test' for about one key in five (stable across machines and versions), else 'train'."""
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "big")
    return "test" if h % TEST_MODULUS == 0 else "train"


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def list_recordings(split: str | None = None, *, sonic_pi_root: Path = SONIC_PI_ROOT,
                    hydrogen_root: Path = HYDROGEN_ROOT, packages: tuple[str, ...] | None = None
                    ) -> list[Recording]:
    """Every packaged recording found on this machine (optionally one split / some packages).

    An empty list means the packages are not installed (``scripts/setup.sh`` installs them).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out: list[Recording] = []
    for p in _files(Path(sonic_pi_root)):
        key = str(p.relative_to(sonic_pi_root))
        out.append(Recording(p, "sonic-pi-samples", key, split_of(key)))
    for p in _files(Path(hydrogen_root)):
        kit = p.relative_to(hydrogen_root).parts[0]
        out.append(Recording(p, "hydrogen-drumkits", kit, split_of("kit:" + kit)))
    if packages is not None:
        out = [r for r in out if r.package in packages]
    if split is not None:
        out = [r for r in out if r.split == split]
    return out


def test_set(max_clips: int | None = None) -> list[Recording]:
    """The real-recording test set the bench reads: held-out sonic-pi files (whole files),
    longest-first order is not used; sorted by name so a limit keeps the same clips."""
    recs = sorted(list_recordings("test", packages=("sonic-pi-samples",)), key=lambda r: r.key)
    return recs[:max_clips] if max_clips else recs
