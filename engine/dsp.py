"""Streaming STFT analysis / synthesis with the framing of docs/ARCHITECTURE.md.

Frame k covers input samples ``[(k+1)R - N, (k+1)R - 1]`` (zeros before the first sample).
Code column c is frames (F c, ..., F c + F - 1); it is analysed as soon as its last sample has
arrived. Analysis: periodic sqrt-Hann window, ``rfft``, ``logmag = ln(|X| + eps)`` of bins
``0..model_bins-1``; the complex spectrum (its phase) is kept. Synthesis: decoded magnitude
``max(exp(logmag) - eps, 0)`` times the kept input phase (bins >= model_bins keep the input's
own magnitude), ``irfft``, the same window, overlap-add with gain ``1 / sum_k w^2[n + kR]``
(1/2 for N = 4R), so that analysis + synthesis of an unchanged spectrum is the identity.

The output FIFO starts with ``D = N - 1 + (F - 1) R`` zeros and the reconstruction of negative
times (frames overlapping the zeros before the first sample) is dropped, so that
``y[n] = x[n - D]`` exactly for an identity codec, whatever the host block sizes are.

Codec v4 (``synthesis_len`` M < N, ``vqblur.common.windows``): the analysis window is a long
asymmetric one (bins ``sample_rate / N`` apart), the synthesis window spans only each frame's
last M samples, the overlap-add runs over those, and ``D = M - 1 + (F - 1) R``: the latency of
an M-sample frame with the frequency resolution of an N-sample one.

All channels are processed together (arrays ``[channels, ...]``); every channel has its own
history. Computation is float64; buffers are preallocated (they grow only if a caller pushes
more than ``max_block`` samples at once, which :class:`vqblur.engine.core.Engine` never does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vqblur.common.windows import analysis_window, is_asymmetric, sqrt_hann, synthesis_window
from vqblur.common.windows import ola_gain as _ola_gain

__all__ = ["SignalConfig", "StreamingStft", "ola_gain", "sqrt_hann"]


@dataclass(frozen=True)
class SignalConfig:
    """The signal parameters the DSP and the codecs agree on (from a bundle's manifest)."""

    sample_rate: int = 48000
    n_fft: int = 320
    hop: int = 80
    frames_per_column: int = 2
    model_bins: int = 160
    log_eps: float = 1e-5
    rows: int = 20
    codebook_size: int = 256
    #: codec v4: the synthesis window spans the frame's last ``synthesis_len`` samples of an
    #: ``n_fft``-long analysis frame (``vqblur.common.windows``); 0: symmetric (= n_fft)
    synthesis_len: int = 0
    #: codec v5's split framing (``vqblur.common.framing``): the long window's length (0: off)
    #: and the crossover between its bins and the ``n_fft`` window's
    long_n_fft: int = 0
    crossover_hz: float = 1500.0

    def split_layout(self):
        """The split framing's :class:`~vqblur.common.framing.SplitLayout`, or None."""
        from vqblur.common.framing import split_layout

        return split_layout(self.sample_rate, self.n_fft, self.long_n_fft, self.crossover_hz)

    def model_bin_hz(self) -> tuple[np.ndarray, np.ndarray]:
        """(centre frequency, spacing) of each model bin, both [model_bins] Hz."""
        lay = self.split_layout()
        if lay is not None:
            return lay.bin_hz(), lay.bin_width_hz()
        df = self.sample_rate / self.n_fft
        return np.arange(self.model_bins) * df, np.full(self.model_bins, df)

    @property
    def synthesis_samples(self) -> int:
        """How many of a frame's samples the synthesis window spans (n_fft when symmetric)."""
        return self.synthesis_len if is_asymmetric(self.n_fft, self.synthesis_len) else self.n_fft

    @property
    def latency_samples(self) -> int:
        return self.synthesis_samples - 1 + (self.frames_per_column - 1) * self.hop

    @property
    def column_samples(self) -> int:
        return self.frames_per_column * self.hop

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @classmethod
    def from_bundle(cls, bundle) -> "SignalConfig":
        return cls(
            sample_rate=bundle.sample_rate,
            n_fft=bundle.n_fft,
            hop=bundle.hop,
            frames_per_column=bundle.frames_per_column,
            model_bins=bundle.model_bins,
            log_eps=bundle.log_eps,
            rows=bundle.rows,
            codebook_size=bundle.codebook_size,
            synthesis_len=int(getattr(bundle, "synthesis_len", 0) or 0),
            long_n_fft=int(getattr(bundle, "long_n_fft", 0) or 0),
            crossover_hz=float(getattr(bundle, "crossover_hz", 1500.0) or 1500.0),
        )


def ola_gain(window: np.ndarray, hop: int) -> float:
    """Synthesis gain so that a symmetric window used for analysis and synthesis overlap-adds to
    exactly 1 (``vqblur.common.windows.ola_gain`` of its square)."""
    return _ola_gain(np.asarray(window) * np.asarray(window), hop)


class StreamingStft:
    """Input FIFO -> per-column analysis -> (codec) -> synthesis -> overlap-add -> output FIFO.

    Usage per host block (the Engine does this)::

        stft.push(x)                         # x: [n, channels] float
        while stft.column_ready():
            logmag = stft.analyse_column()   # [channels, F, model_bins] float64 (a view)
            ...                              # codec
            stft.synthesise_column(logmag_out)
        y = stft.pull(n)                     # [n, channels] float64

    Per column the work is a fixed, short sequence of whole-array numpy calls on preallocated
    buffers (no loop over samples or bins; the only Python loop is over the F frames of the
    overlap-add): the input FIFO is addressed as hop-sized blocks, so a column's F windows are
    one strided view of it.
    """

    # |X| of a full-scale input is at most sum(w) ~ 0.64 N: clamp decoded log-magnitudes 12 dB
    # above that so a wild decoder cannot blow up the output.
    def __init__(self, cfg: SignalConfig, channels: int = 1, max_block: int = 4096):
        if cfg.n_fft % cfg.hop:
            raise ValueError("hop must divide n_fft")
        self.cfg = cfg
        self.channels = int(channels)
        N, R, F = cfg.n_fft, cfg.hop, cfg.frames_per_column
        self.N, self.R, self.F = N, R, F
        self.mb = cfg.model_bins
        self.eps = float(cfg.log_eps)
        M = cfg.synthesis_samples
        self.M = M
        self.window = analysis_window(N, cfg.synthesis_len)
        # only the synthesis window's last M samples are not zero (all N when symmetric)
        self.syn_window = synthesis_window(N, R, cfg.synthesis_len)[N - M:]
        #: digital silence takes each bin's carried phase instead of phase 0 (the engine turns
        #: this on while the smear knob is up; see ``_carry_silence_phase``)
        self.carry_phase = False
        self.logmag_max = float(np.log(4.0 * self.window.sum()))
        self.logmag_min = float(np.log(self.eps))
        self.latency = cfg.latency_samples
        self.col_len = N + (F - 1) * R  # input samples one column's frames span
        self.acc_len = M + (F - 1) * R  # output samples one column's synthesis windows span
        self.col_hop = F * R
        self._alloc(max_block)
        self.reset()

    def _alloc(self, max_block: int) -> None:
        C, N, R, F = self.channels, self.N, self.R, self.F
        nb = self.N // 2 + 1  # the (long) frame's rfft bins
        self.max_block = int(max_block)
        n_in = self.col_len + self.max_block
        n_in += -n_in % R
        self._in = np.zeros((C, n_in))
        # the input FIFO as overlapping windows: _windows[:, k] = _in[:, k R : k R + N]
        s0, s1 = self._in.strides
        self._windows = np.lib.stride_tricks.as_strided(
            self._in, (C, n_in // R - N // R + 1, N), (s0, R * s1, s1), writeable=False)
        self._out = np.zeros((C, self.latency + self.max_block + 2 * self.col_hop + self.N))
        self._acc = np.zeros((C, self.acc_len))
        self._spec = np.zeros((C, F, nb), np.complex128)
        self._absx = np.zeros((C, F, nb))
        self._logmag = np.zeros((C, F, self.mb))
        self._frames = np.zeros((C, F, N))
        self._mag = np.zeros((C, F, self.mb))
        self._ratio = np.zeros((C, F, self.mb))
        self._spec_out = np.zeros((C, F, nb), np.complex128)
        self._spec_f = self._spec.view(np.float64).reshape(C, F, nb, 2)
        self._spec_out_f = self._spec_out.view(np.float64).reshape(C, F, nb, 2)
        self._frames_out = np.zeros((C, F, N))
        # the silence phase carry (``carry_phase``): each bin's last unit phasor, one hop on
        self._unit = np.ones((C, nb), np.complex128)  # phase 0 until a bin has sounded
        self._unit_next = np.zeros((C, nb), np.complex128)
        self._advance = np.exp(2j * np.pi * np.arange(nb) * self.R / self.N)  # [nb]
        self._silent = np.zeros((C, F, nb), bool)
        self._sounding = np.zeros((C, F, nb), bool)
        #: after ``synthesise_column(..., measure_levels=True)``: the energy of the output
        #: samples it completed and of the input samples they answer, per channel ([C])
        self.level_out = np.zeros(C)
        self.level_in = np.zeros(C)

    def reset(self) -> None:
        """Clear all audio history: as if freshly made."""
        self._in[:] = 0.0
        # The first frame reaches N - R samples before time 0: that much zero history.
        self._in_len = self.N - self.R
        self._in_read = 0
        self._acc[:] = 0.0
        self._unit[:] = 1.0
        self._out[:, : self.latency] = 0.0
        self._out_len = self.latency
        # Overlap-added samples of negative time (frames over the leading zeros) are dropped.
        self._discard = self.M - self.R

    # ---- input side -------------------------------------------------------------------
    def push(self, x: np.ndarray) -> None:
        """Append x ([n, channels]) to the input FIFO."""
        n = x.shape[0]
        if n == 0:
            return
        # compact: move unread samples to the front (_in_read is a multiple of the hop)
        if self._in_read:
            keep = self._in_len - self._in_read
            self._in[:, :keep] = self._in[:, self._in_read : self._in_len]
            self._in_len, self._in_read = keep, 0
        if self._in_len + n > self._in.shape[1]:
            self._grow(n)
        self._in[:, self._in_len : self._in_len + n] = x.T
        self._in_len += n

    def _grow(self, n: int) -> None:
        """Larger FIFOs for a block past ``max_block`` (the engine never sends one: it cuts host
        blocks to its ``CHUNK``); the stream in flight carries on: the input and output FIFOs,
        the pending overlap-add and the carried phases are kept."""
        old_in, old_out, old_acc, old_unit = self._in, self._out, self._acc, self._unit
        self._alloc(max(n, 2 * self.max_block))
        self._in[:, : old_in.shape[1]] = old_in
        self._out[:, : old_out.shape[1]] = old_out
        self._acc[:] = old_acc
        self._unit[:] = old_unit

    def column_ready(self) -> bool:
        return self._in_len - self._in_read >= self.col_len

    def analyse_column(self) -> np.ndarray:
        """Window + rfft the next column's F frames; returns logmag [channels, F, model_bins]."""
        k = self._in_read // self.R
        np.multiply(self._windows[:, k : k + self.F], self.window, out=self._frames)
        _rfft(self._frames, self._spec)
        if self.carry_phase:
            self._carry_silence_phase()  # fills _absx too
        else:
            # a bin with X = 0 has no phase: + 1e-300 gives it phase 0 (and |X| > 0 for the
            # synthesis ratio); any other X is unchanged at float64 precision
            self._spec_f[..., 0] += 1e-300
            np.abs(self._spec, out=self._absx)
        np.add(self._absx[..., : self.mb], self.eps, out=self._logmag)
        np.log(self._logmag, out=self._logmag)
        self._in_read += self.col_hop
        return self._logmag

    def _carry_silence_phase(self) -> None:
        """Digital silence (X = 0) gets |X| = 1e-300 with the bin's phase carried on from its
        last frame (advanced one hop at the bin's own frequency), instead of phase 0.

        Phase 0 in every bin makes a frame an impulse at its first sample, where the synthesis
        window is 0: a magnitude painted into silence (the smear's tail after a one-shot whose
        file ends in zeros) would be lost in the overlap-add. With the carried phase it rings
        on as the bins' own sinusoids. Bins that sound keep their phase exactly. Leaves |X| in
        ``_absx`` (1e-300 where silent)."""
        sp, a, silent, sounding = self._spec, self._absx, self._silent, self._sounding
        u, un = self._unit, self._unit_next
        np.abs(sp, out=a)
        if a.min() > 0.0:  # nothing silent (the common case): keep the last frame's phasors
            np.divide(sp[:, -1], a[:, -1], out=u)
            return
        np.equal(a, 0.0, out=silent)
        np.logical_not(silent, out=sounding)
        for f in range(self.F):
            np.multiply(u, self._advance, out=un)  # the last frame's phase, one hop on
            np.divide(sp[:, f], a[:, f], out=u, where=sounding[:, f])
            np.copyto(u, un, where=silent[:, f])
            np.multiply(u, 1e-300, out=un)
            np.copyto(sp[:, f], un, where=silent[:, f])
        np.copyto(a, 1e-300, where=silent)

    # ---- output side ------------------------------------------------------------------
    def _gain(self, logmag: np.ndarray, absx: np.ndarray) -> np.ndarray:
        """Decoded magnitude over the input's, per model bin (``_ratio``, in place): the decoded
        logmag is clamped (NaN and -inf to the floor, fmax dropping NaN; +inf to the ceiling),
        ``exp - eps`` and at least 0, then divided by ``absx`` (the input's |X|, > 0)."""
        m = self._mag
        np.fmax(logmag, self.logmag_min, out=m)
        np.minimum(m, self.logmag_max, out=m)
        np.exp(m, out=m)
        m -= self.eps
        np.maximum(m, 0.0, out=m)
        return np.divide(m, absx, out=self._ratio)

    def synthesise_column(self, logmag: np.ndarray, measure_levels: bool = False) -> None:
        """Decoded logmag [channels, F, model_bins] x kept phase -> irfft -> OLA -> output FIFO.

        Bins >= model_bins keep the input spectrum as it is. Where |X| is 0 there is no phase:
        phase 0 is used (the analysis adds 1e-300 to every bin's real part), or with
        ``carry_phase`` the bin's phase carried on from its last frame. ``measure_levels``:
        also fill ``level_out`` / ``level_in`` (blur v2's output level loop)."""
        mb = self.mb
        # |X| >= 1e-300 (see analyse_column), so mag / |X| is finite
        ratio = self._gain(logmag, self._absx[..., :mb])
        so, sx = self._spec_out_f, self._spec_f  # complex spectra as [..., bins, (re, im)]
        np.multiply(sx[..., :mb, 0], ratio, out=so[..., :mb, 0])
        np.multiply(sx[..., :mb, 1], ratio, out=so[..., :mb, 1])
        so[..., mb:, :] = sx[..., mb:, :]
        frames = _irfft(self._spec_out, self.N, self._frames_out)[..., self.N - self.M:]
        frames *= self.syn_window
        self._overlap_add(frames, measure_levels)

    def _overlap_add(self, frames: np.ndarray, measure_levels: bool, add_input: bool = False) -> None:
        """The column's synthesised frames [channels, F, M] -> overlap-add -> the samples they
        complete (``col_hop``) to the output FIFO; ``add_input``: the input samples those answer
        are added first (the split framing resynthesises only the change). ``measure_levels``:
        ``level_out`` / ``level_in`` of the completed samples and of those input samples."""
        acc, R, M, h = self._acc, self.R, self.M, self.col_hop
        for f in range(self.F):
            acc[:, f * R : f * R + M] += frames[:, f]
        a = self._in_read + self.N - M  # the completed samples answer inputs a - h .. a - 1
        if add_input:
            acc[:, :h] += self._in[:, a - h : a]
        if measure_levels:
            for c in range(self.channels):
                done, dry = acc[c, :h], self._in[c, a - h : a]
                self.level_out[c] = done @ done
                self.level_in[c] = dry @ dry
        self._emit(acc[:, :h])
        rest = self.acc_len - h
        acc[:, :rest] = acc[:, h:]
        acc[:, rest:] = 0.0

    def _emit(self, block: np.ndarray) -> None:
        if self._discard:
            d = min(self._discard, block.shape[1])
            self._discard -= d
            block = block[:, d:]
        n = block.shape[1]
        self._out[:, self._out_len : self._out_len + n] = block
        self._out_len += n

    def available(self) -> int:
        return self._out_len

    def pull(self, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """Take n samples from the output FIFO: [n, channels] float64 (a new array, or
        written into ``out`` [n, channels])."""
        if n > self._out_len:  # cannot happen with the framing above; keep length anyway
            self._out[:, self._out_len : n] = 0.0
            self._out_len = n
        if out is None:
            out = self._out[:, :n].T.copy()
        else:
            out[...] = self._out[:, :n].T
        rest = self._out_len - n
        self._out[:, :rest] = self._out[:, n : self._out_len]
        self._out_len = rest
        return out


def _np_rfft(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    out[...] = np.fft.rfft(frames, axis=-1)
    return out


def _np_irfft(spec: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    out[...] = np.fft.irfft(spec, n=n, axis=-1)
    return out


def _pocketfft_ufuncs():
    """numpy >= 2 computes its FFTs with gufuncs (``numpy.fft._pocketfft_umath``); called
    directly, into a preallocated ``out``, they skip np.fft's Python argument handling (about
    2-3 us per call, a third of a 320-point transform). Returns (rfft, irfft) functions, or
    None when this numpy has no such gufuncs or they disagree with np.fft on a test frame."""
    try:
        from numpy.fft import _pocketfft_umath as pfu

        def rfft(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
            ax = frames.ndim - 1
            fn = pfu.rfft_n_even if frames.shape[-1] % 2 == 0 else pfu.rfft_n_odd
            return fn(frames, 1, axes=[(ax,), (), (ax,)], out=out)

        def irfft(spec: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
            ax = spec.ndim - 1
            return pfu.irfft(spec, 1.0 / n, axes=[(ax,), (), (ax,)], out=out)

        x = np.random.default_rng(0).standard_normal((2, 2, 320))
        spec = rfft(x, np.empty((2, 2, 161), np.complex128))
        back = irfft(spec, 320, np.empty((2, 2, 320)))
        if np.array_equal(spec, np.fft.rfft(x, axis=-1)) and np.array_equal(back, np.fft.irfft(spec, 320, axis=-1)):
            return rfft, irfft
    except Exception:  # a numpy without these private gufuncs, or a changed signature
        pass
    return None


_rfft, _irfft = _pocketfft_ufuncs() or (_np_rfft, _np_irfft)

