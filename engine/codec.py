"""Codecs: log-magnitude column <-> code column, with explicit streaming state.

Interface shared by every codec (the Engine relies on nothing else)::

    codec.config            SignalConfig
    codec.bundle            Bundle or None
    codec.encode(logmag)    logmag [F, model_bins] float -> codes [rows] int64
    codec.decode(codes)     codes [rows] int64 -> logmag [F, model_bins] (float32/64)
    codec.decode_pair(blurred, clean)
                            two decoder streams, each with its own state:
                            -> (logmag_b, logmag_c), each [F, model_bins]
    codec.reset()           states back to zeros
    codec.fork()            a codec with the same model and its own (zero) state

``OnnxCodec`` runs the bundle's encoder/decoder step graphs with onnxruntime (one intra-op
thread by default, sequential execution); it owns the state arrays and feeds each call's
``state_out`` back as the next ``state_in``. ``IdentityCodec`` passes the log-magnitude through
(tests, and the benchmark's DSP-only baseline).

Two decoder streams (``decode_pair``, for the detail knob)
-----------------------------------------------------------
Stream b decodes the blurred codes (it is the stream ``decode`` advances), stream c the
encoder's own codes; each has its own decoder state. While the two code columns are equal
and the two states are equal (after ``reset``, and whenever the blur has left the codes alone
long enough for the states to meet again), one decode serves both and the states stay
shared. Otherwise both are decoded: in one ``sess.run`` with batch 2 when the decoder graph
has a dynamic batch axis (and ran a batch-2 trial at load), else two runs of the batch-1
graph. Do not mix ``decode`` and ``decode_pair`` on one codec: ``decode`` advances stream b
only (it marks the streams as different).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqblur.engine.bundle import Bundle, load_bundle
from vqblur.engine.dsp import SignalConfig
from vqblur.errors import BundleError


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
        self._held = np.zeros((c.frames_per_column, c.model_bins))
        self._codes = np.zeros(c.rows, np.int64)

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
        F, mb = c.frames_per_column, c.model_bins
        self._check(bundle.encoder_path, self.enc,
                    [("logmag", (1, F, mb))] + [(s.name_in, s.shape) for s in bundle.encoder_states],
                    [("codes", (1, c.rows))] + [(s.name_out, s.shape) for s in bundle.encoder_states],
                    {"logmag": _FLOAT, "codes": _INT64})
        self._check(bundle.decoder_path, self.dec,
                    [("codes", (1, c.rows))] + [(s.name_in, s.shape) for s in bundle.decoder_states],
                    [("logmag", (1, F, mb))] + [(s.name_out, s.shape) for s in bundle.decoder_states],
                    {"logmag": _FLOAT, "codes": _INT64})
        # One trial step of each graph on silence with zero state: a graph that loads but cannot
        # run (a bad Reshape, an op this onnxruntime lacks at run time) is refused here, naming
        # the file, rather than raising inside the audio loop. It also warms the sessions up.
        floor = np.float32(np.log(c.log_eps))
        self._trial(bundle.encoder_path, self.enc,
                    {"logmag": np.full((1, F, mb), floor, np.float32),
                     **{s.name_in: np.zeros(s.shape, np.float32) for s in bundle.encoder_states}},
                    [("codes", (1, c.rows), np.int64)]
                    + [(s.name_out, s.shape, np.float32) for s in bundle.encoder_states])
        self._trial(bundle.decoder_path, self.dec,
                    {"codes": np.zeros((1, c.rows), np.int64),
                     **{s.name_in: np.zeros(s.shape, np.float32) for s in bundle.decoder_states}},
                    [("logmag", (1, F, mb), np.float32)]
                    + [(s.name_out, s.shape, np.float32) for s in bundle.decoder_states])
        #: the decoder runs both streams of ``decode_pair`` in one call (batch 2)
        self.dec_batch2 = self._batch2_ok(bundle, c)

    def _batch2_ok(self, bundle: Bundle, c: SignalConfig) -> bool:
        """True when every decoder input/output has a dynamic leading axis and a batch-2
        trial run returns batch-2 outputs (else ``decode_pair`` makes two batch-1 runs)."""
        ios = list(self.dec.get_inputs()) + list(self.dec.get_outputs())
        if any(not io.shape or isinstance(io.shape[0], int) for io in ios):
            return False
        states = bundle.decoder_states
        if any(not s.shape or s.shape[0] != 1 for s in states):
            return False
        F, mb = c.frames_per_column, c.model_bins
        feed = {"codes": np.zeros((2, c.rows), np.int64),
                **{s.name_in: np.zeros((2, *s.shape[1:]), np.float32) for s in states}}
        try:
            got = self.dec.run(None, feed)
        except Exception:  # onnxruntime's own types: a graph that only runs at batch 1
            return False
        want = [(2, F, mb)] + [(2, *s.shape[1:]) for s in states]
        return [tuple(np.shape(a)) for a in got] == want

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
    def _check(path, sess, inputs, outputs, types=None) -> None:
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


class OnnxCodec:
    """A bundle's step graphs in onnxruntime, with the engine-owned streaming state."""

    def __init__(self, bundle: Bundle | str | Path, threads: int = 1, _sessions: _Sessions | None = None):
        if not isinstance(bundle, Bundle):
            bundle = load_bundle(bundle)
        self.bundle = bundle
        self.config = SignalConfig.from_bundle(bundle)
        self._s = _sessions or _Sessions(bundle, threads)
        c = self.config
        self._logmag = np.zeros((1, c.frames_per_column, c.model_bins), np.float32)
        self._codes = np.zeros((1, c.rows), np.int64)
        self._enc_feed = {"logmag": self._logmag}
        self._dec_feed = {"codes": self._codes}
        self._enc_states = [(s.name_in, s.name_out) for s in bundle.encoder_states]
        self._dec_states = [(s.name_in, s.name_out) for s in bundle.decoder_states]
        for s in bundle.encoder_states:
            self._enc_feed[s.name_in] = np.zeros(s.shape, np.float32)
        for s in bundle.decoder_states:
            self._dec_feed[s.name_in] = np.zeros(s.shape, np.float32)
        self._enc_out = ["codes"] + [o for _, o in self._enc_states]
        self._dec_out = ["logmag"] + [o for _, o in self._dec_states]
        # stream c (the encoder's codes) of decode_pair: its own codes buffer and states
        self._codes_c = np.zeros((1, c.rows), np.int64)
        self._dec_feed_c = {"codes": self._codes_c}
        self._same = True  # stream c's state arrays are stream b's (shared, never written)
        self._codes_eq = np.zeros(c.rows, bool)  # comparison buffers: decode_pair allocates nothing
        self._state_eq = {s.name_in: np.zeros(s.shape, bool) for s in bundle.decoder_states}
        # batch-2 feed (one run for both streams), preallocated
        self._batch2 = self._s.dec_batch2
        if self._batch2:
            self._codes2 = np.zeros((2, c.rows), np.int64)
            self._dec_feed2 = {"codes": self._codes2}
            for s in bundle.decoder_states:
                self._dec_feed2[s.name_in] = np.zeros((2, *s.shape[1:]), np.float32)
        self._share_states()

    @property
    def threads(self) -> int:
        return self._s.threads

    def encode(self, logmag: np.ndarray) -> np.ndarray:
        self._logmag[0] = logmag
        out = self._s.enc.run(self._enc_out, self._enc_feed)
        for (name_in, _), new in zip(self._enc_states, out[1:]):
            self._enc_feed[name_in] = new
        return out[0][0]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Stream b alone: codes [rows] -> logmag [F, model_bins]."""
        self._same = False
        return self._decode_b(codes)

    def _decode_b(self, codes: np.ndarray) -> np.ndarray:
        self._codes[0] = codes
        out = self._s.dec.run(self._dec_out, self._dec_feed)
        for (name_in, _), new in zip(self._dec_states, out[1:]):
            self._dec_feed[name_in] = new
        return out[0][0]

    def _decode_c(self, codes: np.ndarray) -> np.ndarray:
        self._codes_c[0] = codes
        out = self._s.dec.run(self._dec_out, self._dec_feed_c)
        for (name_in, _), new in zip(self._dec_states, out[1:]):
            self._dec_feed_c[name_in] = new
        return out[0][0]

    def _decode_both(self, blurred: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batch-2 run: row 0 = stream b, row 1 = stream c."""
        f2 = self._dec_feed2
        self._codes2[0] = blurred
        self._codes2[1] = clean
        for name_in, _ in self._dec_states:
            buf = f2[name_in]
            buf[0] = self._dec_feed[name_in][0]
            buf[1] = self._dec_feed_c[name_in][0]
        out = self._s.dec.run(self._dec_out, f2)
        for (name_in, _), new in zip(self._dec_states, out[1:]):
            self._dec_feed[name_in] = new[0:1]
            self._dec_feed_c[name_in] = new[1:2]
        return out[0][0], out[0][1]

    def _share_states(self) -> None:
        for name_in, _ in self._dec_states:
            self._dec_feed_c[name_in] = self._dec_feed[name_in]
        self._same = True

    def _states_equal(self) -> bool:
        fb, fc = self._dec_feed, self._dec_feed_c
        for n, _ in self._dec_states:
            eq = self._state_eq[n]
            np.equal(fb[n], fc[n], out=eq)
            if not eq.all():
                return False
        return True

    def decode_pair(self, blurred: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two decoder streams: blurred [rows] (stream b), clean [rows] (stream c) ->
        (logmag_b, logmag_c), each [F, model_bins] float32.

        Equal codes and equal states: one decode, the same array twice. Otherwise both
        streams are decoded (one batch-2 run when the graph allows, else two runs); when the
        codes were equal, the new states are compared and shared again if they met."""
        same_codes = blurred is clean
        if not same_codes:
            np.equal(blurred, clean, out=self._codes_eq)
            same_codes = bool(self._codes_eq.all())
        if same_codes and self._same:
            lb = self._decode_b(blurred)
            self._share_states()
            return lb, lb
        if self._batch2:
            lb, lc = self._decode_both(blurred, clean)
        else:
            lb = self._decode_b(blurred)
            lc = self._decode_c(clean)
        self._same = False
        if same_codes and self._states_equal():
            self._share_states()
        return lb, lc

    def reset(self) -> None:
        for s in self.bundle.encoder_states:
            self._enc_feed[s.name_in] = np.zeros(s.shape, np.float32)
        for s in self.bundle.decoder_states:
            self._dec_feed[s.name_in] = np.zeros(s.shape, np.float32)
        self._share_states()

    def fork(self) -> "OnnxCodec":
        """Same sessions (no second copy of the model), its own zero state."""
        return OnnxCodec(self.bundle, _sessions=self._s)
