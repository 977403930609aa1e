"""Sample-rate conversion around the engine, with an exact, declared latency.

``ResampledEngine(engine, io_rate)`` runs an :class:`~vqblur.engine.core.Engine` (at the
bundle's rate) from a device or file at another rate: ``io -> model`` resampler, the engine,
``model -> io`` resampler, and an output FIFO, so that ``process(block)`` still returns
``len(block)`` samples for any block size and ``y[n] = engine_path(x)[n - latency_samples]``.
``make_engine(...)`` returns a plain Engine when the rates match, else the wrapper.

Why not soxr's streaming resampler: measured here (python-soxr 1.1, quality HQ) its
``ResampleStream`` withholds up to ~1000 output samples per direction (it filters in internal
blocks), and how many depends on the block size; for a live effect that is 20+ ms per
direction and a latency that cannot be declared exactly. Instead :class:`StreamResampler` is
a small windowed-sinc (Kaiser, beta 8.6) polyphase interpolator in numpy: output ``j`` is
the input evaluated at time ``t_j = (j * in_rate + c) / out_rate`` from ``2W`` taps around it
(``W = 16`` input samples, scaled up by ``in/out`` when decimating; cut-off 0.92 of the lower
Nyquist; each phase normalised to unity DC gain). It is symmetric (zero phase), so its only
delay is that it needs ``W`` samples of look-ahead, and its output count after ``n`` inputs is
a fixed function of ``n``: block-size invariant and exactly accountable. Measured through
the whole wrapper (identity codec) at 44.1 kHz: flat to 16 kHz (error -89 dB), -0.5 dB at
18 kHz, -3 dB at 19 kHz, -22 dB at 21 kHz; at 96 kHz flat to 18 kHz, > 99 dB rejection of
30-40 kHz (the model's band ends at 24 kHz anyway).

Latency at the I/O rate. With D the engine's latency (model samples), the downsampler's time
offset ``c = (D * io) mod model`` makes the path a pure integer delay ``Lr = floor(D * io /
model)``; the output FIFO is primed with ``P`` zeros, the smallest number for which it never
runs dry (computed exactly from the two resamplers' look-ahead). Declared latency =
``P + Lr`` I/O samples, and that is what a cross-correlation measures (tested at 44.1 kHz).
Measured with the default framing (D = 399 at 48 kHz): 44.1 kHz -> 33 + 366 = 399 samples
(9.05 ms); 96 kHz -> 64 + 798 = 862 (8.98 ms); 32 kHz -> 32 + 266 = 298 (9.3 ms).
"""

from __future__ import annotations

import math

import numpy as np

from vqblur.engine.core import as_frames, sanitize_input


def _kaiser_sinc(u: np.ndarray, fc: float, W: float, beta: float) -> np.ndarray:
    """Windowed sinc low-pass (cut-off fc of the input Nyquist) at offsets u (input samples)."""
    h = fc * np.sinc(fc * u)
    r = np.clip(u / W, -1.0, 1.0)
    return h * np.i0(beta * np.sqrt(1.0 - r * r)) / np.i0(beta)


class StreamResampler:
    """Streaming polyphase windowed-sinc resampler, [n, channels] float64 in and out.

    Output j is the input at time ``(j * in_rate + offset) / out_rate`` input samples,
    ``0 <= offset < out_rate`` (an integer: a sub-sample time shift). Output j is produced once
    input sample ``floor(t_j) + W`` has arrived; ``outputs_after(n)`` gives the count exactly.
    """

    MAX_TABLE_PHASES = 8192

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1, half_width: int = 16,
                 beta: float = 8.6, cutoff: float = 0.92, offset: int = 0):
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        if self.in_rate <= 0 or self.out_rate <= 0:
            raise ValueError("sample rates must be positive integers")
        self.channels = int(channels)
        ratio = min(1.0, self.out_rate / self.in_rate)
        self.fc = cutoff * ratio
        self.W = int(math.ceil(half_width / ratio))
        self.beta = float(beta)
        self.offset = int(offset) % self.out_rate
        self.taps = 2 * self.W
        self._k = np.arange(self.taps)  # tap i reads input floor(t) - W + 1 + i
        g = math.gcd(self.in_rate, self.out_rate)
        self._g = g
        self._phases = self.out_rate // g
        self._table = None
        if self._phases <= self.MAX_TABLE_PHASES:
            rem = (self.offset % g) + g * np.arange(self._phases)
            self._table = self._weights(rem / self.out_rate)
        self.reset()

    def _weights(self, frac: np.ndarray) -> np.ndarray:
        # tap i sits at input index floor(t) - W + 1 + i, i.e. at offset u = frac + W - 1 - i
        u = frac[:, None] + (self.W - 1) - self._k[None, :]
        h = _kaiser_sinc(u, self.fc, self.W, self.beta)
        return h / h.sum(axis=1, keepdims=True)

    def reset(self) -> None:
        W = self.W
        self._buf = np.zeros((W + 8192, self.channels))
        self._base = -W  # absolute input index of _buf[0]; zeros before time 0
        self._len = W
        self._n_in = 0
        self._j = 0

    def outputs_after(self, n_in) -> np.ndarray | int:
        """How many outputs exist once n_in inputs have arrived (vectorised over n_in)."""
        n = np.asarray(n_in, dtype=np.int64)
        num = (n - self.W) * self.out_rate - self.offset
        cnt = -((-num) // self.in_rate)  # ceil
        return np.maximum(cnt, 0)

    def process(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if self._len + n > self._buf.shape[0]:
            nb = np.zeros((max(2 * self._buf.shape[0], self._len + n), self.channels))
            nb[: self._len] = self._buf[: self._len]
            self._buf = nb
        self._buf[self._len : self._len + n] = x
        self._len += n
        self._n_in += n
        j_end = int(self.outputs_after(self._n_in))
        m = j_end - self._j
        if m <= 0:
            return np.zeros((0, self.channels))
        j = np.arange(self._j, j_end, dtype=np.int64)
        num = j * self.in_rate + self.offset
        fl = num // self.out_rate
        rem = num - fl * self.out_rate
        if self._table is not None:
            w = self._table[(rem - self.offset % self._g) // self._g]
        else:
            w = self._weights(rem / self.out_rate)
        start = fl - self.W + 1 - self._base
        seg = self._buf[start[:, None] + self._k[None, :]]  # [m, taps, C]
        y = np.einsum("mt,mtc->mc", w, seg)
        self._j = j_end
        # drop input no longer needed by the next output
        nxt = (self._j * self.in_rate + self.offset) // self.out_rate - self.W + 1
        drop = max(0, min(nxt - self._base, self._len))
        if drop:
            keep = self._len - drop
            self._buf[:keep] = self._buf[drop : self._len]
            self._len = keep
            self._base += drop
        return y


class ResampledEngine:
    """An Engine driven at another sample rate (see the module docstring)."""

    def __init__(self, engine, io_rate: int, half_width: int = 16):
        self.engine = engine
        self.io_rate = int(io_rate)
        self.model_rate = int(engine.sample_rate)
        self.channels = engine.channels
        io, model = self.io_rate, self.model_rate
        D = engine.latency_samples
        c = (D * io) % model
        self.path_delay = (D * io) // model  # Lr
        self.down = StreamResampler(io, model, self.channels, half_width, offset=c)
        self.up = StreamResampler(model, io, self.channels, half_width, offset=0)
        self.prime = self._min_prime()
        self.underruns = 0
        self._fifo = np.zeros((self.prime + 2 * 4096 + 64, self.channels))
        self.reset()

    def _min_prime(self) -> int:
        """Smallest P with produced(n) >= n - P for every input count n (exact)."""
        io, model = self.io_rate, self.model_rate
        period = io // math.gcd(io, model)
        span = 4 * period + 8 * (self.down.W + self.up.W) + 4096
        n = np.arange(0, min(span, 2_000_000), dtype=np.int64)
        m = self.down.outputs_after(n)
        u = self.up.outputs_after(m)
        return int(np.max(n - u))

    @property
    def sample_rate(self) -> int:
        return self.io_rate

    @property
    def latency_samples(self) -> int:
        """Declared latency at the I/O rate: FIFO prime + the engine's delay through the resamplers."""
        return self.prime + self.path_delay

    @property
    def params(self):
        return self.engine.params

    @property
    def stats(self):
        return self.engine.stats

    @property
    def blur_available(self) -> bool:
        return self.engine.blur_available

    def set_params(self, params=None, **kw):
        return self.engine.set_params(params, **kw)

    def reset(self) -> None:
        self.engine.reset()
        self.down.reset()
        self.up.reset()
        self._fifo[: self.prime] = 0.0
        self._flen = self.prime

    def process(self, block: np.ndarray) -> np.ndarray:
        x, mono = as_frames(block, self.channels)
        n = x.shape[0]
        y = np.empty((n, self.channels), np.float32)
        for a in range(0, n, 4096):
            b = min(n, a + 4096)
            y[a:b] = self._chunk(x[a:b])
        return y[:, 0] if mono else y

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        xm = sanitize_input(x.astype(np.float64))
        xm = self.down.process(xm)
        ym = self.engine.process(xm.astype(np.float32)) if len(xm) else np.zeros((0, self.channels), np.float32)
        yo = self.up.process(ym.astype(np.float64))
        k = len(yo)
        if self._flen + k > self._fifo.shape[0]:
            nf = np.zeros((2 * (self._flen + k), self.channels))
            nf[: self._flen] = self._fifo[: self._flen]
            self._fifo = nf
        self._fifo[self._flen : self._flen + k] = yo
        self._flen += k
        if self._flen < n:  # cannot happen (prime is exact); keep the length, count it
            self.underruns += 1
            self._fifo[self._flen : n] = 0.0
            self._flen = n
        out = self._fifo[:n].copy()
        rest = self._flen - n
        self._fifo[:rest] = self._fifo[n : self._flen]
        self._flen = rest
        np.clip(out, -1.0, 1.0, out=out)  # the resampler can overshoot the engine's limiter
        return out.astype(np.float32)


def make_engine(bundle_or_codec, sample_rate: int | None = None, **kw):
    """An Engine at the bundle's rate, wrapped in a ResampledEngine when ``sample_rate`` differs."""
    from vqblur.engine.core import Engine

    eng = Engine(bundle_or_codec, **kw)
    if sample_rate is None or int(sample_rate) == eng.sample_rate:
        return eng
    return ResampledEngine(eng, int(sample_rate))
