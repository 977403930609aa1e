"""Codecs: log-magnitude column <-> code column, with explicit streaming state.

Interface shared by every codec (the Engine relies on nothing else)::

    codec.config            SignalConfig
    codec.bundle            Bundle or None
    codec.n_codes           length of a column's flat code vector (rows for a one-level bundle)
    codec.encode(logmag)    logmag [F, model_bins] float -> codes [n_codes] int64
    codec.decode(codes)     codes [n_codes] int64 -> logmag [F, model_bins] (float32/64)
    codec.decode_pair(blurred, clean)
                            two decoder streams, each with its own state:
                            -> (logmag_b, logmag_c), each [F, model_bins]
    codec.reset()           states back to zeros
    codec.fork()            a codec with the same model and its own (zero) state
    codec.decoder_streams(C)
                            optional: C channels' decode_pair streams in one run per column
                            (:class:`DecoderStreams`), or None; the Engine's independent
                            channels use it when it is there

The flat code vector of a column (bundle format 2): micro level 0 (``rows`` codes), level 1,
..., level ``levels - 1``, then the macro map (``rows_macro`` codes). A micro code equal to
the codebook size K is a dropped level (it decodes as zero). A format-1 bundle has one level
and no macro map, so its vector is the ``rows`` codes of the v1 contract.

``OnnxCodec`` runs the bundle's encoder/decoder step graphs with onnxruntime (one intra-op
thread by default, sequential execution, no spinning). Every input and output is bound once
to preallocated numpy memory (onnxruntime IOBinding); each state has two buffers that swap
roles every call (state_out of one call is state_in of the next, by reference: nothing is
copied or allocated per column). ``encode`` returns a view of the codec's output buffer,
valid until the next ``encode``; ``decode``/``decode_pair`` return views of the decoder's
output buffer, valid until the next decode.

Two decoder streams (``decode_pair``, for the detail knob)
-----------------------------------------------------------
Stream b decodes the blurred codes (``decode`` advances it alone), stream c the encoder's own
codes. While the two code columns are equal and the two states are equal (after ``reset``,
and whenever the blur has left the codes alone long enough for the states to meet again),
one batch-1 decode serves both and its new state is copied to stream c. Otherwise both are
decoded in one batch-2 run when the bundle's decoder takes a batch (format 2), else in two
batch-1 runs. ``IdentityCodec`` passes the log-magnitude through (tests, and the benchmark's
DSP-only baseline).

Several channels' streams in one run (``codec.decoder_streams(channels)``)
---------------------------------------------------------------------------
Independent stereo has per column one stream b and, unless it agrees with b, one stream c per
channel. :class:`DecoderStreams` (from ``OnnxCodec.decoder_streams`` when the decoder takes a
batch; None otherwise) holds every channel's two streams in one set of buffers and decodes
exactly the streams that need it in one run: the b streams in slots ``0..C-1``, the c streams
that differ from their b packed after them (a channel's c takes a slot, seeded with b's state,
when its codes or state part from b's, and gives it back when both meet again). Per column
the batch is ``C`` plus the number of channels whose streams differ; one binding per batch
size and state phase is made up front. The results equal each channel's ``decode_pair``
(onnxruntime's batched decoder gives each row the result of a batch-1 run: bit-equal on the
default model, tests/test_codec_decoder_streams.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqblur.engine.bundle import Bundle, load_bundle
from vqblur.engine.dsp import SignalConfig
from vqblur.common.errors import BundleError


class IdentityCodec:
    """Pass-through codec: ``decode(encode(x)) == x``; codes are all zeros."""

    def __init__(self, config: SignalConfig | Bundle | None = None):
        if isinstance(config, Bundle):
            self.bundle: Bundle | None = config
            config = SignalConfig.from_bundle(config)
        else:
            self.bundle = None
        self.config = config or SignalConfig()
        c = self.config
        # with a bundle, the bundle's flat code layout (so an Engine can run its blur on it)
        self.n_codes = self.bundle.n_codes if self.bundle is not None else c.rows
        self._held = np.zeros((c.frames_per_column, c.model_bins))
        self._codes = np.zeros(self.n_codes, np.int64)

    def encode(self, logmag: np.ndarray) -> np.ndarray:
        self._held[:] = logmag
        return self._codes.copy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self._held

    def decode_pair(self, blurred: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both streams return the held column (an identity has no state)."""
        return self._held, self._held

    def reset(self) -> None:
        self._held[:] = 0.0

    def fork(self) -> "IdentityCodec":
        c = IdentityCodec(self.config)
        c.bundle = self.bundle
        return c


_FLOAT = "tensor(float)"
_INT64 = "tensor(int64)"


class _Sessions:
    """The two onnxruntime sessions of a bundle (shared between forked codecs)."""

    def __init__(self, bundle: Bundle, threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # No busy-waiting worker threads: with >1 thread they spin between tiny per-column
        # runs and fight the audio thread for the core (bench: RTF 1.45 -> 0.165 at 2 threads).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.threads = int(threads)
        self.enc = self._open(ort, so, bundle.encoder_path)
        self.dec = self._open(ort, so, bundle.decoder_path)
        c = SignalConfig.from_bundle(bundle)
        F, mb, n = c.frames_per_column, c.model_bins, bundle.n_codes
        self.batched = bundle.decoder_batched
        self._check(bundle.encoder_path, self.enc,
                    [("logmag", (1, F, mb))] + [(s.name_in, s.shape) for s in bundle.encoder_states],
                    [("codes", (1, n))] + [(s.name_out, s.shape) for s in bundle.encoder_states],
                    {"logmag": _FLOAT, "codes": _INT64})
        self._check(bundle.decoder_path, self.dec,
                    [("codes", (1, n))] + [(s.name_in, s.shape) for s in bundle.decoder_states],
                    [("logmag", (1, F, mb))] + [(s.name_out, s.shape) for s in bundle.decoder_states],
                    {"logmag": _FLOAT, "codes": _INT64}, batch_free=self.batched)
        # One trial step of each graph on silence with zero state: a graph that loads but cannot
        # run (a bad Reshape, an op this onnxruntime lacks at run time) is refused here, naming
        # the file, rather than raising inside the audio loop. It also warms the sessions up.
        floor = np.float32(np.log(c.log_eps))
        self._trial(bundle.encoder_path, self.enc,
                    {"logmag": np.full((1, F, mb), floor, np.float32),
                     **{s.name_in: np.zeros(s.shape, np.float32) for s in bundle.encoder_states}},
                    [("codes", (1, n), np.int64)]
                    + [(s.name_out, s.shape, np.float32) for s in bundle.encoder_states])
        for B in ((1, 2) if self.batched else (1,)):
            self._trial(bundle.decoder_path, self.dec,
                        {"codes": np.zeros((B, n), np.int64),
                         **{s.name_in: np.zeros((B, *s.shape[1:]), np.float32)
                            for s in bundle.decoder_states}},
                        [("logmag", (B, F, mb), np.float32)]
                        + [(s.name_out, (B, *s.shape[1:]), np.float32) for s in bundle.decoder_states])

    @staticmethod
    def _open(ort, so, path: Path):
        try:
            return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"{path}: onnxruntime cannot load this graph ({exc})") from None

    @staticmethod
    def _trial(path, sess, feed, outputs) -> None:
        names = [n for n, _, _ in outputs]
        try:
            got = sess.run(names, feed)
        except Exception as exc:  # onnxruntime's own exception types
            raise BundleError(f"{path}: the graph loads but fails when run ({exc})") from None
        for (n, shape, dtype), a in zip(outputs, got):
            a = np.asarray(a)
            if a.shape != tuple(shape) or a.dtype != dtype:
                raise BundleError(f"{path}: a trial run returned {n} {a.dtype}{list(a.shape)}, "
                                  f"expected {np.dtype(dtype)}{list(shape)}")

    @staticmethod
    def _check(path, sess, inputs, outputs, types=None, batch_free: bool = False) -> None:
        """Names, dtypes and shapes against the contract; ``batch_free``: axis 0 must be a
        symbolic (dynamic) dimension rather than 1."""
        types = types or {}
        for io in list(sess.get_inputs()) + list(sess.get_outputs()):
            want = types.get(io.name, _FLOAT if io.name not in types else None)
            if io.type != want:
                raise BundleError(f"{path}: {io.name} is {io.type}, the contract says {want}")
        got_in = [(i.name, tuple(i.shape)) for i in sess.get_inputs()]
        got_out = [(o.name, tuple(o.shape)) for o in sess.get_outputs()]
        for what, got, want in (("inputs", got_in, inputs), ("outputs", got_out, outputs)):
            if [n for n, _ in got] != [n for n, _ in want]:
                raise BundleError(
                    f"{path}: graph {what} are {[n for n, _ in got]}, the manifest/contract says "
                    f"{[n for n, _ in want]}"
                )
            for (n, gs), (_, ws) in zip(got, want):
                if len(gs) != len(ws) or any(isinstance(g, int) and g != w for g, w in zip(gs, ws)):
                    raise BundleError(f"{path}: {n} has shape {list(gs)}, expected {list(ws)}")
                if batch_free and isinstance(gs[0], int):
                    raise BundleError(f"{path}: {n} has a fixed batch axis {gs[0]}; format 2 decoders "
                                      "take a batch of streams (re-export with `vqblur export`)")


class _Bound:
    """A graph's inputs/outputs bound once to preallocated numpy arrays (IOBinding), for each of
    the two state phases: phase p reads states from buffer p and writes buffer 1 - p."""

    def __init__(self, sess, first_in: tuple[str, np.ndarray], first_out: tuple[str, np.ndarray],
                 states, bufs: list[list[np.ndarray]]):
        self.sess = sess
        self.bindings = []
        for p in (0, 1):
            io = sess.io_binding()
            io.bind_cpu_input(first_in[0], first_in[1])
            for s, a in zip(states, bufs[p]):
                io.bind_cpu_input(s.name_in, a)
            _bind_out(io, *first_out)
            for s, a in zip(states, bufs[1 - p]):
                _bind_out(io, s.name_out, a)
            self.bindings.append(io)
        # onnxruntime's Python run_with_iobinding wraps the C++ call with WebGPU graph-capture
        # bookkeeping (a few us per call); call the C++ session directly where it is exposed
        inner = getattr(sess, "_sess", None)
        raw = [getattr(io, "_iobinding", None) for io in self.bindings]
        if inner is not None and hasattr(inner, "run_with_iobinding") and None not in raw:
            self._run, self._args = inner.run_with_iobinding, [(r, None) for r in raw]
        else:
            self._run, self._args = sess.run_with_iobinding, [(io,) for io in self.bindings]

    def run(self, phase: int) -> None:
        self._run(*self._args[phase])


def _bind_out(io, name: str, a: np.ndarray) -> None:
    assert a.flags.c_contiguous
    io.bind_output(name, "cpu", 0, a.dtype.type, list(a.shape), a.ctypes.data)


class OnnxCodec:
    """A bundle's step graphs in onnxruntime, with the engine-owned streaming state."""

    def __init__(self, bundle: Bundle | str | Path, threads: int = 1, _sessions: _Sessions | None = None):
        if not isinstance(bundle, Bundle):
            bundle = load_bundle(bundle)
        self.bundle = bundle
        self.config = SignalConfig.from_bundle(bundle)
        self._s = _sessions or _Sessions(bundle, threads)
        c = self.config
        F, mb = c.frames_per_column, c.model_bins
        self.n_codes = n = bundle.n_codes
        self.levels, self.rows_macro = bundle.levels, bundle.rows_macro
        f32 = np.float32

        # encoder: logmag in, codes out, states ping-pong
        self._logmag = np.zeros((1, F, mb), f32)
        self._codes_enc = np.zeros((1, n), np.int64)
        es = bundle.encoder_states
        self._enc_bufs = [[np.zeros(s.shape, f32) for s in es] for _ in (0, 1)]
        self._enc = _Bound(self._s.enc, ("logmag", self._logmag), ("codes", self._codes_enc), es,
                           self._enc_bufs)
        self._enc_phase = 0
        self._codes_col = self._codes_enc[0]  # the same view every call (callers may cache on it)

        # decoder: two streams (row 0 = b, blurred; row 1 = c, the encoder's codes). Batch-1
        # bindings use the row views (contiguous), the batch-2 binding the whole arrays.
        ds = bundle.decoder_states
        self._codes2 = np.zeros((2, n), np.int64)
        self._out2 = np.zeros((2, F, mb), f32)
        self._dec_bufs = [[np.zeros((2, *s.shape[1:]), f32) for s in ds] for _ in (0, 1)]
        row = lambda a, r: a[r:r + 1]  # noqa: E731 - a contiguous [1, ...] view
        self._dec1 = [
            _Bound(self._s.dec, ("codes", row(self._codes2, r)), ("logmag", row(self._out2, r)), ds,
                   [[row(a, r) for a in self._dec_bufs[p]] for p in (0, 1)])
            for r in (0, 1)
        ]
        self._dec2 = (_Bound(self._s.dec, ("codes", self._codes2), ("logmag", self._out2), ds,
                             self._dec_bufs) if self._s.batched else None)
        self._phase = [0, 0]  # per stream: which buffer holds its current state
        self._same = True  # streams b and c have equal states

    @property
    def threads(self) -> int:
        return self._s.threads

    @property
    def batched(self) -> bool:
        """True when ``decode_pair`` decodes both streams in one call."""
        return self._dec2 is not None

    def encode(self, logmag: np.ndarray) -> np.ndarray:
        """logmag [F, model_bins] -> codes [n_codes] int64 (a view, valid until the next encode)."""
        self._logmag[0] = logmag
        self._enc.run(self._enc_phase)
        self._enc_phase ^= 1
        return self._codes_col

    def _run1(self, r: int) -> None:
        self._dec1[r].run(self._phase[r])
        self._phase[r] ^= 1

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Stream b alone: codes [n_codes] -> logmag [F, model_bins]."""
        self._codes2[0] = codes
        self._run1(0)
        self._same = False
        return self._out2[0]

    def _copy_state(self, src: int, dst: int) -> None:
        """Stream dst's state := stream src's (into dst's current buffer)."""
        ps, pd = self._phase[src], self._phase[dst]
        for a_src, a_dst in zip(self._dec_bufs[ps], self._dec_bufs[pd]):
            a_dst[dst] = a_src[src]

    def _states_equal(self) -> bool:
        p0, p1 = self._phase
        return all(np.array_equal(a[0], b[1]) for a, b in zip(self._dec_bufs[p0], self._dec_bufs[p1]))

    def decode_pair(self, blurred: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two decoder streams: blurred [n_codes] (stream b), clean [n_codes] (stream c) ->
        (logmag_b, logmag_c), each [F, model_bins] float32 (views of one output buffer).

        Equal codes and equal states: one decode, the same array twice. Otherwise both streams
        are decoded (one batch-2 run when the graph allows, else two runs); when the codes
        were equal, the new states are compared and shared again if they met."""
        same_codes = blurred is clean or np.array_equal(blurred, clean)
        c2 = self._codes2
        c2[0] = blurred
        if same_codes and self._same:
            self._run1(0)
            self._copy_state(0, 1)
            return self._out2[0], self._out2[0]
        c2[1] = clean
        if self._dec2 is not None:
            if self._phase[0] != self._phase[1]:  # after decode(): bring stream c alongside
                self._align()
            self._dec2.run(self._phase[0])
            self._phase[0] ^= 1
            self._phase[1] ^= 1
        else:
            self._run1(0)
            self._run1(1)
        self._same = same_codes and self._states_equal()
        return self._out2[0], self._out2[1]

    def _align(self) -> None:
        """Move stream c's state into the buffer phase stream b uses (rare: after decode())."""
        p0, p1 = self._phase
        for a0, a1 in zip(self._dec_bufs[p0], self._dec_bufs[p1]):
            a0[1] = a1[1]
        self._phase[1] = p0

    def reset(self) -> None:
        for bufs in self._enc_bufs + self._dec_bufs:
            for a in bufs:
                a.fill(0.0)
        self._enc_phase = 0
        self._phase = [0, 0]
        self._same = True

    def fork(self) -> "OnnxCodec":
        """Same sessions (no second copy of the model), its own zero state."""
        return OnnxCodec(self.bundle, _sessions=self._s)

    def decoder_streams(self, channels: int) -> "DecoderStreams | None":
        """The two decoder streams of ``channels`` channels decoded together (one run per
        column, the sessions shared with this codec); None when the decoder graph takes one
        stream per run (format 1)."""
        return DecoderStreams(self._s, self.bundle, channels) if self._s.batched else None


class DecoderStreams:
    """``channels`` channels' decoder streams b and c (``OnnxCodec.decode_pair``'s), decoded in
    one batched run per column. See the module docstring ("Several channels' streams")."""

    def __init__(self, sessions: _Sessions, bundle: Bundle, channels: int):
        C = self.channels = int(channels)
        if C < 1:
            raise ValueError("channels must be >= 1")
        if not sessions.batched:
            raise ValueError(f"{bundle.decoder_path}: the decoder takes one stream per run")
        c = SignalConfig.from_bundle(bundle)
        S, n, f32 = 2 * C, bundle.n_codes, np.float32
        ds = bundle.decoder_states
        self._codes = np.zeros((S, n), np.int64)
        self._out = np.zeros((S, c.frames_per_column, c.model_bins), f32)
        self._bufs = [[np.zeros((S, *s.shape[1:]), f32) for s in ds] for _ in (0, 1)]
        # the b streams always run: batches C..2C, each bound once per state phase (prefix views)
        self._runs = [_Bound(sessions.dec, ("codes", self._codes[:B]), ("logmag", self._out[:B]), ds,
                             [[a[:B] for a in self._bufs[p]] for p in (0, 1)])
                      for B in range(C, S + 1)]
        self._rows = [self._out[i] for i in range(S)]  # [F, bins] views, made once
        self.lb = self._rows[:C]  # channel k's stream b result (slot k), returned by decode_pairs
        self.lc = list(self.lb)  # channel k's stream c result (its slot's row, or b's)
        self._agree = [True] * C  # this column: channel k's two code columns are equal
        # comparisons into scratch (np.array_equal makes a temporary the size of its arrays)
        self._neq_codes = np.zeros(n, bool)
        self._neq = [np.zeros(s.shape[1:], bool) for s in ds]
        self.reset()

    def reset(self) -> None:
        for bufs in self._bufs:
            for a in bufs:
                a.fill(0.0)
        self._phase = 0  # which buffer holds every slot's current state
        C = self.channels
        self._slot = [-1] * C  # channel k's stream c: its slot (C..2C-1), or -1: it is b's
        self._owner = [-1] * C  # slot C + j belongs to channel _owner[j] (j < _nc)
        self._nc = 0  # c streams with a slot of their own
        for k in range(C):
            self.lc[k] = self.lb[k]

    def decode_pairs(self, blurred, clean) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``blurred[k]``, ``clean[k]`` (channel k's code columns, [n_codes] int64) ->
        (``lb``, ``lc``): lists of channel k's ``[F, model_bins]`` float32 results, views of one
        output buffer valid until the next call (the lists are this object's, reused)."""
        C, codes, p = self.channels, self._codes, self._phase
        for k in range(C):
            b, c = blurred[k], clean[k]
            codes[k] = b
            agree = self._agree[k] = b is c or not np.not_equal(b, c, out=self._neq_codes).any()
            s = self._slot[k]
            if s < 0:
                if agree:  # one decode serves both streams
                    continue
                s = self._claim(k, p)
            codes[s] = c
        self._runs[self._nc].run(p)
        p = self._phase = p ^ 1
        for k in range(C):
            s = self._slot[k]
            self.lc[k] = self._rows[s] if s >= 0 else self.lb[k]
        for k in range(C):  # streams whose codes agreed and whose new states met share again
            s = self._slot[k]
            if s >= 0 and self._agree[k] and self._states_equal(k, s, p):
                self._release(k, p)
        return self.lb, self.lc

    def _states_equal(self, i: int, j: int, p: int) -> bool:
        for a, neq in zip(self._bufs[p], self._neq):
            if np.not_equal(a[i], a[j], out=neq).any():
                return False
        return True

    def _claim(self, k: int, p: int) -> int:
        """Channel k's c stream leaves b: a slot of its own, holding b's current state."""
        s = self.channels + self._nc
        for a in self._bufs[p]:
            a[s] = a[k]
        self._owner[self._nc] = k
        self._nc += 1
        self._slot[k] = s
        return s

    def _release(self, k: int, p: int) -> None:
        """Channel k's c stream is b's again; the last slot's stream moves into its slot (the
        results already handed out stay where they are until the next run)."""
        s, last = self._slot[k], self.channels + self._nc - 1
        if s != last:
            m = self._owner[last - self.channels]
            for a in self._bufs[p]:
                a[s] = a[last]
            self._owner[s - self.channels] = m
            self._slot[m] = s
        self._slot[k] = -1
        self._nc -= 1
