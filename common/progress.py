"""Progress bars for long work: shown on a terminal only.

A bar redraws itself with carriage returns; in a log file or a pipe those pile up on one line
and run into the summary printed after the work. So a bar is drawn only when its stream is a
terminal, and it clears its line when it closes (``leave=False``), so the next line starts clean.
"""

from __future__ import annotations

import sys
from typing import IO, Any


def is_terminal(stream: IO[str] | None = None) -> bool:
    """True when ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def progress_bar(total: int | None = None, *, desc: str, unit: str = "it", quiet: bool = False,
                 file: IO[str] | None = None, **kw: Any):
    """A tqdm bar on ``file`` (default stderr); disabled when ``quiet`` or not a terminal.

    Extra keyword arguments go to tqdm. The bar never stays on screen after ``close()``.
    """
    from tqdm import tqdm

    file = sys.stderr if file is None else file
    kw.setdefault("leave", False)
    kw.setdefault("dynamic_ncols", True)
    return tqdm(total=total, desc=desc, unit=unit, file=file,
                disable=quiet or not is_terminal(file), **kw)


def progress_iter(iterable, *, desc: str, unit: str = "it", quiet: bool = False, **kw: Any):
    """Wrap an iterable in :func:`progress_bar` (total from ``len`` when it has one)."""
    try:
        total = len(iterable)
    except TypeError:
        total = None
    bar = progress_bar(total, desc=desc, unit=unit, quiet=quiet, **kw)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()
