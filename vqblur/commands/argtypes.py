"""argparse `type=` validators shared by the subcommands: a bad value is one clear line."""

from __future__ import annotations

import argparse


def positive_int(s: str, maximum: int | None = None) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    if maximum is not None and v > maximum:
        raise argparse.ArgumentTypeError(f"expected at most {maximum}, got {v}")
    return v


def nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}") from None
    if not v > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {s!r}")
    return v


# knob values (0..1) are typed by vqblur.engine.knobs.unit_type, from the knob declarations
