"""How the CLI states a latency: the engine's own figure (samples at the model's rate, and ms)
and, when audio runs at another rate, the figure at that rate and why it is larger."""

from __future__ import annotations

from typing import Any


def latency_figures(engine: Any) -> dict[str, float | int]:
    """The engine's latency at the model rate and, for a resampled engine, at the I/O rate.

    ``engine`` is an :class:`vqblur.engine.core.Engine` or a
    :class:`vqblur.engine.resample.ResampledEngine` (which has ``.engine`` and ``.io_rate``).
    """
    inner = getattr(engine, "engine", engine)
    model_rate = int(inner.sample_rate)
    d = int(inner.latency_samples)
    io_rate = int(getattr(engine, "io_rate", model_rate))
    io = int(engine.latency_samples)
    return {"model_samples": d, "model_rate": model_rate, "model_ms": 1000.0 * d / model_rate,
            "io_samples": io, "io_rate": io_rate, "io_ms": 1000.0 * io / io_rate}


def describe_latency(engine: Any) -> str:
    """``399 samples = 8.31 ms at the model's 48000 Hz`` and, when the I/O rate differs,
    ``; 215 samples = 9.75 ms at 22050 Hz (the resampling filters to and from 48000 Hz add 1.44 ms)``."""
    f = latency_figures(engine)
    text = f"{f['model_samples']} samples = {f['model_ms']:.2f} ms at the model's {f['model_rate']} Hz"
    if f["io_rate"] != f["model_rate"]:
        text += (f"; {f['io_samples']} samples = {f['io_ms']:.2f} ms at {f['io_rate']} Hz "
                 f"(the resampling filters to and from {f['model_rate']} Hz add "
                 f"{f['io_ms'] - f['model_ms']:.2f} ms)")
    return text
