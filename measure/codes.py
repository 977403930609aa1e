"""Code grids as the engine sees them: the bundle's encoder over a clip, and the streaming
sampler's output for a grid (both torch-free; used by the NB evaluation and the report)."""

from __future__ import annotations

import numpy as np

from vqblur.engine.bundle import Bundle


def encode_codes(bundle: Bundle, audio: np.ndarray, threads: int = 1, codec=None, return_bands: bool = False,
                 map_name: str = "micro"):
    """The code grid ``[rows, columns]`` the engine's encoder produces for ``audio`` (mono): the
    engine's own column loop (:meth:`vqblur.engine.core.Engine.encode_codes`).

    ``map_name``: ``"micro"`` (micro level 0, what ``nb_table.npz`` models; a format-1 bundle's
    only map), ``"macro"`` (the macro map, ``[rows_macro, columns]``) or ``"all"`` (the flat code
    vectors ``[n_codes, columns]``). ``return_bands``: also return each cell's input level
    ``[rows, columns]`` (mean log-magnitude of the row's bins over the column's frames), e.g. to
    order codes by what they encode.
    """
    from vqblur.common.freqaxis import row_bin_weights
    from vqblur.engine.codec import OnnxCodec
    from vqblur.engine.core import Engine

    eng = Engine(codec if codec is not None else OnnxCodec(bundle, threads=threads))
    x = np.asarray(audio, dtype=np.float64)
    if return_bands:
        grids, lms = eng.encode_codes(x, bands=True)
    else:
        grids = eng.encode_codes(x)
    g = grids[0]
    if map_name == "micro":
        g = g[: bundle.rows]
    elif map_name == "macro":
        g = g[bundle.levels * bundle.rows:]
    if not return_bands:
        return g
    if g.shape[1] == 0:
        return g, np.zeros((bundle.rows, 0))
    from vqblur.engine.dsp import SignalConfig

    w = row_bin_weights(bundle.row_edges_hz(), bundle.sample_rate, bundle.n_fft, bundle.model_bins,
                        SignalConfig.from_bundle(bundle).model_bin_hz())
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)  # [rows, bins], each row's mean
    bands = w @ lms[0].mean(axis=1).T  # [rows, C]
    return g, bands


def blur_codes(bundle: Bundle, codes: np.ndarray, zone_size: float, temperature: float,
               centre: float = 0.5, seed: int = 0, map_name: str = "micro") -> np.ndarray:
    """The streaming blur's output for a code grid at constant knobs (= the engine's: its
    ``CodeBlur`` with the perceptual zone, evidence and hold, same seed): micro level 0
    ``[rows, C]`` from ``codes [rows, C]``, or (``map_name="macro"``) the macro map
    ``[rows_macro, C]`` as the engine resamples it with ``scale`` on."""
    from vqblur.engine.core import Engine

    eng = Engine(bundle, seed=seed)
    blur = eng.samplers[0]
    eng.zone.update(zone_size, centre)
    n_codes = bundle.n_codes
    first = bundle.levels * bundle.rows if map_name == "macro" else 0
    scale = 1.0 if map_name == "macro" else 0.0
    col = np.full(n_codes, bundle.codebook_size, dtype=np.int64)
    res = np.empty(n_codes, dtype=np.int64)
    out = np.empty_like(codes)
    for c in range(codes.shape[1]):
        col[first:first + codes.shape[0]] = codes[:, c]
        blur.step(col, res, zone_size, centre, temperature, scale)
        out[:, c] = res[first:first + codes.shape[0]]
    return out
