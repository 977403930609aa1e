"""Code grids as the engine sees them: the bundle's encoder over a clip, and the streaming
sampler's output for a grid (both torch-free; used by the NB evaluation and the report)."""

from __future__ import annotations

import numpy as np

from vqblur.engine.bundle import Bundle
from vqblur.engine.dsp import SignalConfig, StreamingStft


def encode_codes(bundle: Bundle, audio: np.ndarray, threads: int = 1, codec=None, return_bands: bool = False,
                 map_name: str = "micro"):
    """The code grid ``[rows, columns]`` the engine's encoder produces for ``audio`` (mono).

    ``map_name``: ``"micro"`` (micro level 0, what ``nb_table.npz`` models; a format-1 bundle's
    only map), ``"macro"`` (the macro map, ``[rows_macro, columns]``) or ``"all"`` (the flat code
    vectors ``[n_codes, columns]``).

    Same framing and state handling as the engine (StreamingStft + OnnxCodec, from reset).
    ``return_bands``: also return each cell's input level ``[rows, columns]`` (mean log-magnitude
    of the row's bins over the column's frames), e.g. to order codes by what they encode.
    """
    from vqblur.engine.codec import OnnxCodec

    cfg = SignalConfig.from_bundle(bundle)
    codec = codec if codec is not None else OnnxCodec(bundle, threads=threads)
    codec.reset()
    stft = StreamingStft(cfg, 1, max_block=4096)
    cols, bands = [], []
    x = np.asarray(audio, dtype=np.float64)
    bpr = cfg.model_bins // cfg.rows
    for a in range(0, len(x), 4096):
        stft.push(x[a : a + 4096, None])
        while stft.column_ready():
            lm = stft.analyse_column()
            cols.append(np.array(codec.encode(lm[0]), dtype=np.int64).reshape(-1))
            if return_bands:
                bands.append(lm[0][:, : bpr * cfg.rows].reshape(lm.shape[1], cfg.rows, bpr).mean(axis=(0, 2)))
            stft.synthesise_column(lm)  # keep the FIFOs bounded (output unused)
            stft.pull(stft.available())
    if not cols:
        empty = np.zeros((cfg.rows, 0), np.int64)
        return (empty, np.zeros((cfg.rows, 0))) if return_bands else empty
    g = np.stack(cols, axis=1)
    if map_name == "micro":
        g = g[: cfg.rows]
    elif map_name == "macro":
        g = g[bundle.levels * bundle.rows:]
    return (g, np.stack(bands, axis=1)) if return_bands else g


def blur_codes(bundle: Bundle, codes: np.ndarray, zone_size: float, temperature: float,
               centre: float = 0.5, seed: int = 0, map_name: str = "micro") -> np.ndarray:
    """The streaming sampler's output for a code grid at constant knobs (= the engine's, same
    seed): micro level 0 ``[rows, C]``, or (``map_name="macro"``) the macro map ``[rows_macro, C]``
    as the engine resamples it with ``scale`` on."""
    from vqblur.engine.blur import ZoneSampler, load_nb_table
    from vqblur.engine.blur.codeblur import MACRO_SEED_OFFSET

    if map_name == "macro":
        s = ZoneSampler(load_nb_table(bundle.nb_macro_path), bundle.rows_macro, seed=seed + MACRO_SEED_OFFSET)
    else:
        s = ZoneSampler(load_nb_table(bundle.nb_path), bundle.rows, seed=seed)
    out = np.empty_like(codes)
    for c in range(codes.shape[1]):
        out[:, c] = s.step(codes[:, c].copy(), zone_size, centre, temperature)
    return out
