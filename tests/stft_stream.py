"""Shared by the framing tests: stream audio through an engine STFT in uneven host blocks,
edit its model log-magnitudes on the way, and read a tone's level back."""

from __future__ import annotations

import numpy as np

from vqblur.engine.dsp import SignalConfig
from vqblur.engine.split_stft import make_stft

SR = 48000


def stream(cfg: SignalConfig, x: np.ndarray, edit=None, blocks=(17, 500, 4096, 33, 1000)) -> np.ndarray:
    """x [n, C] through ``make_stft(cfg)``; ``edit(logmag)`` changes each column's model
    log-magnitudes [C, F, bins] in place (None: unchanged, and then the output level loop's two
    energies must agree column by column)."""
    st = make_stft(cfg, x.shape[1])
    out, pos, i = [], 0, 0
    while pos < len(x):
        n = min(blocks[i % len(blocks)], len(x) - pos)
        st.push(x[pos:pos + n])
        pos, i = pos + n, i + 1
        while st.column_ready():
            lm = st.analyse_column().copy()
            if edit is not None:
                edit(lm)
            st.synthesise_column(lm, measure_levels=True)
            if edit is None:
                assert np.allclose(st.level_out, st.level_in, rtol=1e-9, atol=1e-12)
        out.append(st.pull(n))
    return np.concatenate(out)


def tone(f: float, n: int = 24000) -> np.ndarray:
    return np.sin(2 * np.pi * f * np.arange(n) / SR)


def level_db(y: np.ndarray, f: float) -> float:
    """Level of frequency f in the steady part of y (dB, a 0.4 s DFT from sample 6000)."""
    seg = y[6000:6000 + 19200]
    return 20 * np.log10(abs(np.dot(seg, np.exp(-2j * np.pi * f * np.arange(len(seg)) / SR))) / len(seg) * 2)


def cut(lo: int, hi: int, db: float = 40.0):
    """An edit lowering model bins lo..hi-1 by ``db``."""
    def edit(lm):
        lm[..., lo:hi] -= db / 8.685889638065035
    return edit
