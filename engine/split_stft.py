"""The split framing's streaming STFT (codec v5; ``vqblur.common.framing``).

Same interface and framing as :class:`vqblur.engine.dsp.StreamingStft` (push, column_ready,
analyse_column, synthesise_column, pull; latency ``n_fft - 1 + (F - 1) R`` = 399 samples),
but every frame is analysed twice, both windows ending at its newest sample: a long
asymmetric window (``long_n_fft`` = 1280: 37.5 Hz bins) gives the model bins below the
crossover, the ``n_fft`` (320) sqrt-Hann window those above.

Synthesis: the decoded magnitudes over the input's give a gain per model bin (at most
:data:`RATIO_MAX`); it is interpolated in frequency onto each path's bins, and each path
resynthesises only the *change* ``X (gain - 1)``, weighted by the raised-cosine crossover
(long path ``c``, short path ``1 - c``): the long path through its asymmetric synthesis window
(a frame's last ``n_fft`` samples), the short one through the sqrt-Hann. Both are overlap-added
and the (delayed) input is added to them, so a gain of 1 everywhere gives the input back
bit for bit. Where the gain is not 1 the input's fine structure is kept and scaled, with the
long window's frequency resolution below the crossover.
"""

from __future__ import annotations

import numpy as np

from vqblur.common.windows import analysis_window, sqrt_hann, synthesis_window
from vqblur.engine.dsp import SignalConfig, StreamingStft, _irfft, _rfft

#: the gain a decoded bin may have over the input's (+60 dB): the change paths scale the
#: input's spectrum, so a decoder painting into near silence cannot blow up its neighbours
RATIO_MAX = 1000.0


def _interp_index(f_from: np.ndarray, f_to: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from points ``f_from`` (increasing) onto ``f_to``: (i0, i1, frac)."""
    j = np.clip(np.searchsorted(f_from, f_to, side="right") - 1, 0, len(f_from) - 2)
    frac = np.clip((f_to - f_from[j]) / (f_from[j + 1] - f_from[j]), 0.0, 1.0)
    return j, j + 1, frac


class SplitStft(StreamingStft):
    """See the module docstring. ``N`` is the long window (the FIFO's frame), ``M`` the short."""

    def __init__(self, cfg: SignalConfig, channels: int = 1, max_block: int = 4096):
        lay = cfg.split_layout()
        if lay is None:
            raise ValueError("SplitStft needs a config with long_n_fft")
        if cfg.model_bins != lay.model_bins:
            raise ValueError(f"model_bins is {cfg.model_bins}, the split layout has {lay.model_bins}")
        if cfg.n_fft % cfg.hop:
            raise ValueError("hop must divide n_fft")
        self.cfg, self.layout = cfg, lay
        self.channels = int(channels)
        NL, M, R, F = cfg.long_n_fft, cfg.n_fft, cfg.hop, cfg.frames_per_column
        self.N, self.M, self.R, self.F = NL, M, R, F
        self.mb = cfg.model_bins
        self.eps = float(cfg.log_eps)
        self.window = analysis_window(NL, M)  # the long path's
        self.window_short = sqrt_hann(M)
        self.syn_window = synthesis_window(NL, R, M)[NL - M:]  # long path, its last M samples
        self.syn_window_short = synthesis_window(M, R)
        self.logmag_max = float(np.log(4.0 * self.window.sum()))
        self.logmag_min = float(np.log(self.eps))
        self.latency = cfg.latency_samples
        self.col_len = NL + (F - 1) * R
        self.acc_len = M + (F - 1) * R
        self.col_hop = F * R
        self.KL = len(lay.long_bins)  # model bins 0..KL-1: long bins 0..KL-1
        self.k0 = int(lay.short_bins[0])  # model bins KL..: short bins k0..M/2-1
        fm = lay.bin_hz()
        # the change paths' bins: the long one up to where its crossover weight ends, the
        # short one from where its weight starts (to its last model bin)
        fl = np.arange(NL // 2 + 1) * cfg.sample_rate / NL
        fs = np.arange(M // 2 + 1) * cfg.sample_rate / M
        cl, cs = lay.crossover_weight(fl), 1.0 - lay.crossover_weight(fs)
        self.PL = int(np.flatnonzero(cl > 0)[-1]) + 1
        self.S0, self.S1 = int(np.flatnonzero(cs > 0)[0]), M // 2  # the Nyquist bin keeps gain 1
        self._il = _interp_index(fm, fl[: self.PL])
        self._is = _interp_index(fm, fs[self.S0 : self.S1])
        self._cl, self._cs = cl[: self.PL], cs[self.S0 : self.S1]
        self._alloc(max_block)
        self.reset()

    def _alloc(self, max_block: int) -> None:
        super()._alloc(max_block)  # the FIFO (long frames), the output, acc, the long spectra
        C, F, M = self.channels, self.F, self.M
        ns = M // 2 + 1
        self._frames_s = np.zeros((C, F, M))
        self._spec_s = np.zeros((C, F, ns), np.complex128)
        self._spec_s_f = self._spec_s.view(np.float64).reshape(C, F, ns, 2)
        self._abs_s = np.zeros((C, F, ns))
        self._absm = np.zeros((C, F, self.mb))  # |X| of each model bin (its path's)
        self._out_s = np.zeros((C, F, ns), np.complex128)  # the short path's change spectrum
        self._out_s_f = self._out_s.view(np.float64).reshape(C, F, ns, 2)
        self._frames_out_s = np.zeros((C, F, M))
        self._spec_out[:] = 0.0  # the long path's change spectrum (bins >= PL stay 0)
        self._gl = np.zeros((C, F, self.PL))
        self._gl1 = np.zeros((C, F, self.PL))
        self._gs = np.zeros((C, F, self.S1 - self.S0))
        self._gs1 = np.zeros((C, F, self.S1 - self.S0))

    def analyse_column(self) -> np.ndarray:
        """Both windows + rffts of the next column's F frames -> logmag [channels, F, model_bins]."""
        k, NL, M, KL = self._in_read // self.R, self.N, self.M, self.KL
        w = self._windows[:, k : k + self.F]
        np.multiply(w, self.window, out=self._frames)
        np.multiply(w[..., NL - M:], self.window_short, out=self._frames_s)
        _rfft(self._frames, self._spec)
        _rfft(self._frames_s, self._spec_s)
        self._spec_f[..., 0] += 1e-300  # no bin without a phase, |X| > 0 (see StreamingStft)
        self._spec_s_f[..., 0] += 1e-300
        np.abs(self._spec, out=self._absx)
        np.abs(self._spec_s, out=self._abs_s)
        a = self._absm
        a[..., :KL] = self._absx[..., :KL]
        a[..., KL:] = self._abs_s[..., self.k0 : self.k0 + self.mb - KL]
        np.add(a, self.eps, out=self._logmag)
        np.log(self._logmag, out=self._logmag)
        self._in_read += self.col_hop
        return self._logmag

    def _path_gain(self, ratio: np.ndarray, idx, weight: np.ndarray, g: np.ndarray, g1: np.ndarray) -> None:
        """g = (interpolated ratio - 1) x crossover weight, on one path's bins, in place."""
        i0, i1, frac = idx
        np.take(ratio, i0, axis=-1, out=g)
        np.take(ratio, i1, axis=-1, out=g1)
        g1 -= g
        g1 *= frac
        g += g1
        g -= 1.0
        g *= weight

    def synthesise_column(self, logmag: np.ndarray, measure_levels: bool = False) -> None:
        """Decoded logmag [channels, F, model_bins] -> the two change paths -> OLA + the input."""
        ratio = self._gain(logmag, self._absm)
        np.minimum(ratio, RATIO_MAX, out=ratio)
        PL, S0, S1 = self.PL, self.S0, self.S1
        self._path_gain(ratio, self._il, self._cl, self._gl, self._gl1)
        self._path_gain(ratio, self._is, self._cs, self._gs, self._gs1)
        so, sx = self._spec_out_f, self._spec_f
        np.multiply(sx[..., :PL, 0], self._gl, out=so[..., :PL, 0])
        np.multiply(sx[..., :PL, 1], self._gl, out=so[..., :PL, 1])
        so, sx = self._out_s_f, self._spec_s_f
        np.multiply(sx[..., S0:S1, 0], self._gs, out=so[..., S0:S1, 0])
        np.multiply(sx[..., S0:S1, 1], self._gs, out=so[..., S0:S1, 1])
        NL, M = self.N, self.M
        long_part = _irfft(self._spec_out, NL, self._frames_out)[..., NL - M:]
        long_part *= self.syn_window
        short_part = _irfft(self._out_s, M, self._frames_out_s)
        short_part *= self.syn_window_short
        short_part += long_part
        self._overlap_add(short_part, measure_levels, add_input=True)


def make_stft(cfg: SignalConfig, channels: int = 1, max_block: int = 4096) -> StreamingStft:
    """The streaming STFT for ``cfg``'s framing: :class:`SplitStft` when it has a long window
    (codec v5), else :class:`~vqblur.engine.dsp.StreamingStft`."""
    if cfg.long_n_fft:
        return SplitStft(cfg, channels, max_block)
    return StreamingStft(cfg, channels, max_block)
