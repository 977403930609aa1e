"""The project's documentation stands on its own: every relative link in README.md and the
Markdown under docs/ (and the other tracked Markdown pages) resolves to a file inside the
repository, every #anchor to a heading of that file, and nothing points at ../shared."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "out", "build", "dist", "node_modules", "__pycache__"}


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for p in sorted(ROOT.rglob("*.md")):
        rel = p.relative_to(ROOT)
        if p not in pages and not any(part in SKIP_DIRS or part.startswith(".") or part.endswith(".egg-info")
                                      for part in rel.parts):
            pages.append(p)
    return pages


PAGES = _pages()
# [text](target) and ![alt](target), not inside `code`; <target> forms too
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _links(text: str) -> list[str]:
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces -> '-'."""
    s = re.sub(r"[`*_]", "", heading.strip().lower())
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {github_slug(m) for m in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M)}


def test_the_pages_are_there():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/ARCHITECTURE.md", "docs/DESIGN.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve_inside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    bad = []
    for target in _links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = page if not path_part else (page.parent / unquote(path_part)).resolve()
        try:
            dest.relative_to(ROOT)
        except ValueError:
            bad.append(f"{target}: outside the repository")
            continue
        if not dest.exists():
            bad.append(f"{target}: {dest.relative_to(ROOT)} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_nothing_points_at_shared(page):
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and "/shared/DESIGN" not in text


def test_link_checker_catches_bad_links(tmp_path):
    """The checker itself: a link out of the tree, a missing file and a missing anchor fail."""
    assert _links("see [d](../shared/DESIGN.md) and `[x](nope.md)` and ![i](fig.png \"t\")") == \
        ["../shared/DESIGN.md", "fig.png"]
    assert github_slug("Knobs (all 0..1, smoothed, MIDI-mappable)") == "knobs-all-01-smoothed-midi-mappable"
    assert github_slug("What zone 0 sounds like, and the output level") == \
        "what-zone-0-sounds-like-and-the-output-level"
