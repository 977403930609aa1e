"""The data loaders' shared types: a :class:`Clip`, a :class:`LoadReport`, and
:func:`subset` (a seeded subset of the files, kept in order). The loaders (:mod:`.folder`,
:mod:`.nsynth`, :mod:`.mix`) and the entry point (:mod:`.corpus`) all import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, TypeVar

import numpy as np

from vqblur.common.errors import UserError

T = TypeVar("T")


@dataclass
class Clip:
    name: str
    audio: np.ndarray  # float32 [n] mono at the requested sample rate
    meta: dict = field(default_factory=dict)


@dataclass
class LoadReport:
    loaded: int
    skipped: int
    skipped_files: list[str] = field(default_factory=list)


def subset(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """A seeded subset of ``limit`` items, kept in the original order."""
    items = list(items)
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in idx]
