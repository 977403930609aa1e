"""The streaming engine: STFT -> encoder -> Naive Bayes blur -> decoder -> overlap-add.

``Engine(bundle_or_codec, params=None, channels=1, seed=0)``; ``process(block) -> block`` for
any block length (``[n]`` or ``[n, channels]``, any float dtype, returns float32 of the same
shape), ``reset()``, ``set_params(**knobs)`` (thread-safe), ``latency_samples``, ``stats``.

Guarantees
* Block-size invariance: the output depends only on the input samples (and the knob values
  at each block), never on how the stream is cut. Work is done per code column (F*R = 160
  samples) on an absolute sample clock; host blocks larger than ``CHUNK`` are split.
* Latency: ``y[n] = x[n - D]`` with ``D = N - 1 + (F-1) R`` (399 samples = 8.3 ms at 48 kHz)
  when the codec is an identity; the dry path is delayed by the same D so dry/wet mixing is
  phase-aligned.
* Knobs (declared once in :mod:`vqblur.engine.knobs`; :class:`Params` has one field per knob)
  are read from an immutable :class:`Params` snapshot once per ``process`` call (another
  thread may call ``set_params`` at any time; it swaps the snapshot). Smoothing as declared:
  "column" knobs (zone size, temperature, centre, detail) with a one-pole per code column
  (time constant ``CODEC_KNOB_TAU`` = 20 ms); "sample" knobs (mix, bypass) with a per-sample
  one-pole (``GAIN_TAU`` = 10 ms, computed in closed form, vectorised). Bypass > 0.5
  crossfades to the delayed dry signal.
* Detail: two decoder streams per channel (``codec.decode_pair``): b = the blurred codes,
  c = the encoder's codes; per column, in log-magnitude at the model's bins,
  ``out = dec(b) + detail * (L_in - dec(c))`` (:func:`apply_detail`), ``L_in`` the column's
  input log-magnitude (blur v2 shapes the change first: :mod:`vqblur.engine.blur.shaping`).
  Detail 1 with zone 0 gives ``y[n] = x[n - D]`` (float precision, below the limiter's knee);
  detail 0 is the codec's resynthesis, held to the input's level in each of four bands frame
  by frame (``hold_codec_level=False``: the codec's own level, as ``dec(c)`` alone).
* Safety: NaN/Inf input samples become 0; decoded log-magnitudes are sanitised and clamped;
  the output goes through a memoryless soft limiter (identity up to ``LIMIT_KNEE`` = 0.89,
  about -1 dBFS, then a tanh knee that never reaches 1) and a final clip, so every output
  sample is finite and within [-1, 1].
* Channels: every channel has its own STFT history and keeps its own phase. ``stereo="linked"``
  (the default for more than one channel): one stream -- the codes and the blur come from one
  shared analysis, the channels' power mean ``L_mid = 0.5 ln(mean_ch |X_ch|^2)`` -- and the same
  change reaches every channel: ``out_ch = out_mid + detail * (L_ch - L_mid) + (1 - detail) *
  B_ch`` (at detail 1 and zone 0 each channel is its own delayed input; with the blur on, the
  left/right level difference of every bin is the input's; below detail 1 ``B_ch``,
  :class:`~vqblur.engine.balance.ChannelBalance`, keeps each channel's own level per band). ``stereo="independent"``: a stream per channel,
  its own codec state (``codec.fork()``: the ONNX sessions are shared, the state arrays are
  not) and its own blur sampler (seed ``seed + 1_000_003 * channel``): a wide, decorrelated
  effect. Its channels' decoder streams run in one batched onnxruntime call per column when
  the codec can (``codec.decoder_streams``: a decoder that takes a batch), with each channel's
  output bit-equal to a mono engine's with its seed.

Knob mapping (docs/ARCHITECTURE.md "Knobs"): the blur (:class:`vqblur.engine.blur.codeblur.CodeBlur`,
one per channel) receives the smoothed 0..1 knob values ``zone_size``, ``centre``,
``temperature`` and ``scale``; its samplers map them to rows/temperature (half-height
``zone_size * rows``, ``T = 4 t^2``, centre row ``centre * (rows - 1)``, on the micro map, or
on the macro map when ``scale`` is on). A codec without a bundle (the identity) has no NB
table: zone size then has no effect (``engine.blur_available`` is False).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqblur.engine import knobs as _knobs
from vqblur.common.freqaxis import row_edges_hz
from vqblur.engine.balance import ChannelBalance
from vqblur.engine.blur import load_nb_table
from vqblur.engine.blur.codeblur import CodeBlur
from vqblur.engine.blur.shaping import ChangeShaper
from vqblur.engine.blur.zone import PerceptualZone
from vqblur.engine.bundle import Bundle, load_bundle
from vqblur.engine.split_stft import make_stft

CHUNK = 4096  # largest piece of a host block processed at once (buffers are sized for it)
CODEC_KNOB_TAU = 0.020  # s, one-pole per column for zone_size / temperature / centre
GAIN_TAU = 0.010  # s, per-sample one-pole for mix / bypass gains
LIMIT_KNEE = 0.89  # soft limiter: identity below, tanh knee above, never reaching 1.0
INPUT_CLAMP = 1.0e6  # |input| beyond this (+120 dBFS) is clamped: keeps every FFT/sum finite
BLUR_EVIDENCE = 2.0  # nats for the input cell's own code (blur v2; vqblur.engine.blur.sampler)
STEREO_MODES = ("linked", "independent")
BLUR_PAST = "input"  # the sampler's past-column neighbours: the input's codes (no drift)
BLUR_HOLD = 48  # columns a resampled code persists before it is redrawn (48 = 160 ms)

KNOBS: tuple[str, ...] = _knobs.NAMES  # declared once, in vqblur.engine.knobs


class _ParamsBase:
    """Methods of :class:`Params` (its fields come from ``vqblur.engine.knobs.ALL``)."""

    __slots__ = ()

    def __post_init__(self) -> None:
        for f in KNOBS:
            object.__setattr__(self, f, _knobs.clamp(f, getattr(self, f)))

    def replace(self, **kw) -> "Params":
        unknown = set(kw) - set(KNOBS)
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(sorted(unknown))}; knobs are {', '.join(KNOBS)}")
        return dataclasses.replace(self, **kw)

    def as_dict(self) -> dict[str, float]:
        return {f: getattr(self, f) for f in KNOBS}


#: Knob values, each 0..1 (values outside are clamped; NaN or non-numbers are refused):
#: ``Params(zone_size=0.3, detail=1.0)``; one float field per declared knob, in declaration
#: order, with the declared default.
Params = dataclasses.make_dataclass(
    "Params",
    [(k.name, float, dataclasses.field(default=k.default)) for k in _knobs.ALL],
    bases=(_ParamsBase,),
    frozen=True,
)
Params.__module__ = __name__
Params.__doc__ = ("Knob values, each 0..1 (clamped; NaN or non-numbers refused). Fields: "
                  + ", ".join(f"{k.name}={k.default:g}" for k in _knobs.ALL) + ".")


@dataclass
class EngineStats:
    """Cheap perf_counter accumulators (seconds) for the benchmark."""

    columns: int = 0
    samples: int = 0
    stft: float = 0.0
    encoder: float = 0.0
    blur: float = 0.0
    decoder: float = 0.0
    overlap_add: float = 0.0
    mix: float = 0.0  # dry/wet, bypass, limiter
    column_times: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(1 << 16), repr=False
    )  # ring of per-column compute times (s); the last min(columns, 65536) are valid

    def reset(self) -> None:
        self.columns = self.samples = 0
        self.stft = self.encoder = self.blur = self.decoder = self.overlap_add = self.mix = 0.0
        self.column_times[:] = 0.0

    @property
    def total(self) -> float:
        return self.stft + self.encoder + self.blur + self.decoder + self.overlap_add + self.mix

    def recent_column_times(self) -> np.ndarray:
        n = min(self.columns, len(self.column_times))
        if self.columns <= len(self.column_times):
            return self.column_times[:n].copy()
        i = self.columns % len(self.column_times)
        return np.concatenate([self.column_times[i:], self.column_times[:i]])

    def as_dict(self) -> dict[str, float]:
        return {
            "columns": self.columns, "samples": self.samples, "stft": self.stft,
            "encoder": self.encoder, "blur": self.blur, "decoder": self.decoder,
            "overlap_add": self.overlap_add, "mix": self.mix, "total": self.total,
        }


def sanitize_input(x: np.ndarray) -> np.ndarray:
    """NaN/+-Inf samples -> 0 and |x| clamped to INPUT_CLAMP; returns x itself when it is clean
    (the common case: two reductions, no allocation), else a cleaned copy (x is not modified).

    Without the clamp, float64 input near its largest values overflows the STFT (inf * 0 =
    NaN in the phase ratio) and the dry/wet difference, and NaN would reach the output.
    """
    if x.size == 0:
        return x
    lo, hi = x.min(), x.max()  # NaN in x makes both NaN and fails the test below
    if -INPUT_CLAMP <= lo and hi <= INPUT_CLAMP:
        return x
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(x, -INPUT_CLAMP, INPUT_CLAMP, out=x)
    return x


def soft_limit(y: np.ndarray, knee: float = LIMIT_KNEE) -> np.ndarray:
    """Memoryless safety limiter in place: identity for |y| <= knee, tanh knee to (knee, 1).

    NaN becomes 0 and +-Inf +-1 (never expected here: the engine's input and decoder output
    are sanitised, but the limiter is the last line of defence)."""
    if y.size == 0 or (y.max() <= knee and y.min() >= -knee):
        return y
    np.nan_to_num(y, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    a = np.abs(y)
    np.minimum(a, 16.0, out=a)  # tanh is 1.0 long before; keeps the division finite
    over = a > knee
    if over.any():
        head = 1.0 - knee
        y[over] = np.sign(y[over]) * (knee + head * np.tanh((a[over] - knee) / head))
    np.clip(y, -1.0, 1.0, out=y)
    return y


def as_frames(block: np.ndarray, channels: int) -> tuple[np.ndarray, bool]:
    """A host block [n] (mono) or [n, channels] -> ([n, channels] view, was it mono)."""
    x = np.asarray(block)
    mono = x.ndim == 1
    if mono:
        if channels != 1:
            raise ValueError(f"engine has {channels} channels; pass [n, {channels}]")
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"expected a block of shape [n] or [n, {channels}], got {x.shape}")
    return x, mono


class Engine:
    """One model, any number of channels, any host block size. See the module docstring."""

    def __init__(self, bundle_or_codec, params: Params | None = None, channels: int = 1,
                 seed: int = 0, threads: int = 1, blur_version: int = 2, stereo: str = "linked",
                 hold_codec_level: bool = True):
        from vqblur.engine.codec import OnnxCodec

        if isinstance(bundle_or_codec, (str, Path)):
            bundle_or_codec = load_bundle(bundle_or_codec)
        if isinstance(bundle_or_codec, Bundle):
            codec = OnnxCodec(bundle_or_codec, threads=threads)
        else:
            codec = bundle_or_codec
        if blur_version not in (1, 2):
            raise ValueError(f"blur_version must be 1 or 2, not {blur_version!r}")
        #: 2 = blur v2 (perceptual zone, evidence, hold, the shaped change); 1 = the previous
        #: blur (row-axis zone, out = dec(b) + detail (L_in - dec(c))), kept for A/B measurements
        self.blur_version = blur_version
        channels = int(channels)
        if channels < 1:
            raise ValueError("channels must be >= 1")
        self.channels = channels
        if stereo not in STEREO_MODES:
            raise ValueError(f"stereo must be one of {', '.join(STEREO_MODES)}, not {stereo!r}")
        #: with more than one channel: "linked" (one analysis, one blur, the same change on every
        #: channel: the image holds, the cost stays near mono) or "independent" (a stream each)
        self.stereo = stereo if channels > 1 else "independent"
        self.linked = self.stereo == "linked"
        streams = 1 if self.linked else channels
        self.codecs = [codec] + [codec.fork() for _ in range(streams - 1)]
        # independent channels: every channel's decoder streams in one run per column when the
        # codec can (OnnxCodec with a batched decoder); the encoders run a channel at a time
        make_streams = getattr(codec, "decoder_streams", None)
        self._streams = make_streams(streams) if streams > 1 and make_streams is not None else None
        self.config = codec.config
        self.bundle: Bundle | None = getattr(codec, "bundle", None)
        self.sample_rate = self.config.sample_rate
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed}")
        self.stft = make_stft(self.config, channels, max_block=CHUNK)
        self._lock = threading.Lock()  # only set_params takes it; never the audio path
        self._params = params if params is not None else Params()
        if not isinstance(self._params, Params):
            raise TypeError("params must be a vqblur.engine.core.Params")

        # the blur: one CodeBlur per channel (micro level 0, and the macro map when the bundle
        # has one); a bare codec (no bundle, e.g. the identity) has no NB table and no blur
        self.samplers: list[CodeBlur] | None = None
        b = self.bundle
        cfg = self.config
        bin_freqs = cfg.model_bin_hz()  # (split framing: 37.5 Hz apart below the crossover)
        if b is not None:
            edges = b.row_edges_hz()
        elif cfg.long_n_fft:  # a bare codec on the split framing: linear rows up to the top bin
            edges = np.linspace(0.0, float(bin_freqs[0][-1]), cfg.rows + 1)
        else:
            edges = row_edges_hz(cfg.rows, cfg.sample_rate, cfg.n_fft, cfg.model_bins)
        self.zone = PerceptualZone(cfg.sample_rate, cfg.n_fft, cfg.model_bins, edges,
                                   b.macro_factor if b is not None else 0, bin_freqs=bin_freqs)
        frame_rate = cfg.sample_rate / cfg.hop
        #: below detail 1 (blur v2), the codec's resynthesis is held to the input's level per band
        #: and frame (``ChangeShaper``'s ``h``); False: the codec's own level (the model alone)
        self.hold_codec_level = bool(hold_codec_level)
        self.shapers = [ChangeShaper(cfg.frames_per_column, self.zone.position, frame_rate,
                                     hold_base_level=self.hold_codec_level)
                        for _ in range(streams)]
        self._smear = 0.0  # the smear knob's smoothed value in the current column
        if b is not None:
            micro = load_nb_table(b.nb_path)
            macro = load_nb_table(b.nb_macro_path) if b.nb_macro_path is not None else None
            self.samplers = [
                CodeBlur(micro, b.rows, b.levels, codebook_size=b.codebook_size, macro_table=macro,
                         rows_macro=b.rows_macro, macro_factor=b.macro_factor,
                         seed=self.seed + 1_000_003 * ch,
                         **({"zone": self.zone, "evidence": BLUR_EVIDENCE, "hold": BLUR_HOLD,
                             "past": BLUR_PAST}
                            if blur_version == 2 else {}))
                for ch in range(streams)
            ]
        self.blur_available = self.samplers is not None
        self._level_loop = self.blur_available and blur_version == 2  # ChangeShaper.feedback
        self._pending_palette: list | None = None  # tables load_palette prepared, swapped in by the worker
        self.palette = Path(b.root).name if b is not None else None  # whose NB tables the blur draws from
        self.tap = None  # optional vqblur.engine.stage.tap.ColumnTap: each column's codes before/after the blur
        #: optional ``hook(channel, L_in [F, bins], clean [n_codes], blurred [n_codes])`` called every
        #: column (offline tools record codes with it: :meth:`encode_codes`); never set live
        self.code_hook = None
        self._encode_only = False

        sr = self.sample_rate
        self._kmax = self.config.codebook_size - 1
        self._col_alpha = 1.0 - math.exp(-self.config.column_samples / (CODEC_KNOB_TAU * sr))
        r = math.exp(-1.0 / (GAIN_TAU * sr))
        self._pow = r ** np.arange(1, CHUNK + 1, dtype=np.float64)
        D = self.stft.latency
        self._dry = np.zeros((channels, D + CHUNK))
        self._wet = np.zeros((CHUNK, channels))  # a chunk's output, before it is copied out
        self._mixed = np.zeros((CHUNK, channels))
        self._codes_out = np.zeros((channels, self.config.frames_per_column, self.config.model_bins))
        self._lm2 = np.zeros_like(self._codes_out)  # linked: the channels' powers
        self._lmid = np.zeros(self._codes_out.shape[1:])  # linked: the shared analysis
        self._out_mid = np.zeros(self._codes_out.shape[1:])
        #: linked stereo below detail 1: each channel's own level per band (engine/balance.py)
        self._balance = (ChannelBalance(channels, self.config.frames_per_column, self.zone.position)
                         if self.linked else None)
        n_codes = self.bundle.n_codes if self.bundle is not None else getattr(codec, "n_codes", self.config.rows)
        self._blurred = np.zeros((streams, n_codes), np.int64)
        self._pair_b: list = [None] * streams  # _stream_columns: each channel's code columns
        self._pair_c: list = [None] * streams
        self._view_before = np.zeros(self.config.rows, np.int64)  # for the tap (view, --png)
        self._view_after = np.zeros(self.config.rows, np.int64)
        self.stats = EngineStats()
        self.reset()

    # ---- knobs ------------------------------------------------------------------------
    @property
    def params(self) -> Params:
        return self._params

    def set_params(self, params: Params | None = None, **kw) -> Params:
        """Swap in a new knob snapshot (thread-safe). ``set_params(zone_size=0.3)``."""
        with self._lock:
            p = params if params is not None else self._params
            if kw:
                p = p.replace(**kw)
            self._params = p
        return p

    def _snap_knobs(self, p: Params) -> None:
        """Jump every smoothed knob to ``p`` (no ramp)."""
        self._targets_of = None
        self._kcol = dict(self._column_targets(p))
        self._gs = {k.name: k.target(getattr(p, k.name)) for k in _knobs.SAMPLE}

    def load_palette(self, bundle_or_path) -> str:
        """Switch the blur's Naive Bayes tables to another bundle's (a *palette*: the same codec,
        tables fitted on other sounds, e.g. from ``vqblur make-bundle --palette-only``). The tables
        are read, checked and stacked here, in the calling thread; the engine swaps them in between
        two code columns (no click: the blur's change is smoothed). Returns the palette's name.
        ``BundleError`` if the tables do not fit this model (rows, codebook, offsets)."""
        from vqblur.common.errors import BundleError

        if self.samplers is None:
            raise BundleError("this engine has no blur (no Naive Bayes table) to take a palette")
        b = bundle_or_path if isinstance(bundle_or_path, Bundle) else load_bundle(bundle_or_path)
        mine = self.bundle
        if mine is not None and (b.rows, b.codebook_size, b.rows_macro) != (mine.rows, mine.codebook_size,
                                                                          mine.rows_macro):
            raise BundleError(f"{b.root}: its code grid ({b.rows} rows, {b.codebook_size} codes, "
                              f"{b.rows_macro} macro rows) does not fit this model's")
        micro = load_nb_table(b.nb_path)
        macro = load_nb_table(b.nb_macro_path) if b.nb_macro_path is not None else None
        return self.use_tables(micro, macro, Path(b.root).name)

    def use_tables(self, micro, macro=None, name: str = "tables") -> str:
        """Switch the blur to these tables (:class:`~vqblur.engine.blur.NBTable` or their
        dicts: the micro map's, and the macro map's on codec v2), stacked here, swapped in between
        two code columns as :meth:`load_palette` does; ``name`` becomes :attr:`palette`."""
        from vqblur.common.errors import BundleError

        if self.samplers is None:
            raise BundleError("this engine has no blur (no Naive Bayes table) to take tables")
        self._pending_palette = [s.prepare_tables(micro, macro) for s in self.samplers]
        self.palette = name
        return self.palette

    @property
    def palette_pending(self) -> bool:
        """True from :meth:`load_palette` until the engine has swapped the tables in (at the
        start of the next ``process`` call that reaches a column boundary)."""
        return self._pending_palette is not None

    def knob(self, name: str) -> float:
        """The current smoothed value of a per-column knob (what the last column used)."""
        return self._kcol[name]

    # ---- state ------------------------------------------------------------------------
    @property
    def latency_samples(self) -> int:
        """Declared latency in samples at the engine's (the bundle's) sample rate."""
        return self.stft.latency

    def reset(self) -> None:
        """Clear all audio state (STFT history, codec and sampler state); keep the knobs."""
        self.stft.reset()
        for c in self.codecs:
            c.reset()
        if self._streams is not None:
            self._streams.reset()
        if self.samplers:
            for s in self.samplers:
                s.reset()
        for sh in self.shapers:
            sh.reset(silent=True)
        self._zone_seen = -1  # the shapers take the zone again at the next column
        self._dry[:] = 0.0
        self._dry_len = self.stft.latency
        self._snap_knobs(self._params)

    # ---- processing -------------------------------------------------------------------
    def process(self, block: np.ndarray) -> np.ndarray:
        """Process any number of samples: [n] (mono engine) or [n, channels] -> float32, same shape."""
        x, mono = as_frames(block, self.channels)
        n = x.shape[0]
        y = np.empty((n, self.channels), np.float32)
        p = self._params  # one snapshot per block
        for a in range(0, n, CHUNK):
            b = min(n, a + CHUNK)
            y[a:b] = self._process_chunk(x[a:b], p)
        return y[:, 0] if mono else y

    def _process_chunk(self, x: np.ndarray, p: Params) -> np.ndarray:
        st = self.stats
        pc = time.perf_counter
        n = x.shape[0]
        if x.dtype.kind != "f":  # float32/64 go in as they are (the FIFOs are float64)
            x = x.astype(np.float64)
        x = sanitize_input(x)
        stft = self.stft
        t0 = pc()
        stft.push(x)
        st.stft += pc() - t0
        if self._pending_palette is not None:  # a palette switch: between two columns
            for smp, prep in zip(self.samplers, self._pending_palette):
                smp.use_tables(prep)
            self._pending_palette = None
        a = self._col_alpha
        out = self._codes_out
        targets = self._column_targets(p)
        while stft.column_ready():
            tc = t0 = pc()
            # with the smear up, a smeared tail into digital silence needs a phase to ring on
            stft.carry_phase = self._smear > 0.0
            lm = stft.analyse_column()
            t1 = pc()
            st.stft += t1 - t0
            # per-column one-pole smoothing of the codec knobs (nothing to do once settled)
            kc = self._kcol
            if kc != targets:
                for name, target in targets.items():
                    kc[name] = _approach(kc[name], target, a)
            zone, centre, temp, detail = kc["zone_size"], kc["centre"], kc["temperature"], kc["detail"]
            scale = kc["scale"]
            self._smear = kc["smear"]  # the time smear, read by the shapers (_stream_shape)
            self.zone.update(zone if self.samplers is not None and self.blur_version == 2 else 0.0, centre)
            if self.zone.version != self._zone_seen:  # the zone moved: the shapers follow
                self._zone_seen = self.zone.version
                for sh in self.shapers:
                    sh.set_zone(self.zone.bin_weight)
            if self.linked:  # one shared analysis (the channels' power mean), one blur
                lmid = self._lmid
                np.multiply(lm, 2.0, out=self._lm2)
                np.exp(self._lm2, out=self._lm2)
                np.mean(self._lm2, axis=0, out=lmid)
                np.log(lmid, out=lmid)
                lmid *= 0.5
                self._stream_column(0, lmid, self._out_mid, zone, centre, temp, scale, detail)
                for ch in range(self.channels):  # out_ch = out_mid + detail * (L_ch - L_mid)
                    np.subtract(lm[ch], lmid, out=out[ch])
                    if detail != 1.0:
                        out[ch] *= detail
                    out[ch] += self._out_mid
                if detail != 1.0:  # + (1 - detail) B_ch: each channel's own level per band
                    bal = self._balance.compute(self._lm2)
                    bal *= 1.0 - detail
                    out += bal
            elif self._streams is not None:  # independent, one decoder run for every channel
                self._stream_columns(lm, out, zone, centre, temp, scale, detail)
            else:
                for ch in range(self.channels):
                    self._stream_column(ch, lm[ch], out[ch], zone, centre, temp, scale, detail)
            t0 = pc()
            measure = False  # blur v2's output level loop: only while a shaper changes the output
            if self._level_loop:
                for sh in self.shapers:
                    if sh.active:
                        measure = True
            stft.synthesise_column(out, measure)
            if measure:
                lo, li = stft.level_out, stft.level_in
                if self.linked:  # one shaper feeds every channel
                    self.shapers[0].feedback(float(lo.sum()), float(li.sum()))
                else:
                    for ch, sh in enumerate(self.shapers):
                        sh.feedback(float(lo[ch]), float(li[ch]))
            t1 = pc()
            st.overlap_add += t1 - t0
            st.column_times[st.columns % len(st.column_times)] = t1 - tc
            st.columns += 1
        t0 = pc()
        wet = stft.pull(n, out=self._wet[:n])  # [n, C], the engine's buffer
        # latency-aligned dry: a view of the delay line, which moves on once y is made
        D = self._dry_len
        self._dry[:, D : D + n] = x.T
        dry = self._dry[:, :n].T
        t1 = pc()
        st.overlap_add += t1 - t0
        # gains: wet = (1 - bypass) * mix, dry = 1 - wet (equal-gain crossfade)
        gm = self._ramp("mix", p.mix, n)
        gb = self._ramp("bypass", p.bypass, n)
        gw = (1.0 - gb) * gm
        if isinstance(gw, np.ndarray) or gw != 1.0:  # y = dry + gw (wet - dry), in place
            y = np.subtract(wet, dry, out=self._mixed[:n])
            y *= gw[:, None] if isinstance(gw, np.ndarray) else gw
            y += dry
        else:  # all wet (the usual case): no arithmetic
            y = wet
        self._dry[:, :D] = self._dry[:, n : n + D]
        soft_limit(y)
        st.mix += pc() - t1
        st.samples += n
        return y

    def _stream_column(self, k: int, lm: np.ndarray, out: np.ndarray, zone: float, centre: float,
                       temp: float, scale: float, detail: float) -> None:
        """One code column of stream ``k`` (a channel, or the linked channels' shared analysis):
        ``lm [F, bins]`` -> encode, blur, decode pair, blur v2 shaping -> ``out [F, bins]``."""
        codes = self._stream_codes(k, lm, zone, centre, temp, scale)
        if codes is None:  # encode_codes: nothing to decode
            out[...] = lm
            return
        t1 = time.perf_counter()
        # two decoder streams: b (blurred codes) and c (the encoder's); one decode
        # when they agree (codes and state)
        lb, lc = self.codecs[k].decode_pair(*codes)
        self._stream_shape(k, lb, lc, lm, detail, out)
        self.stats.decoder += time.perf_counter() - t1

    def _stream_columns(self, lm: np.ndarray, out: np.ndarray, zone: float, centre: float,
                        temp: float, scale: float, detail: float) -> None:
        """Independent channels, one code column each: every channel's encode and blur, then all
        their decoder streams in one run (``DecoderStreams``), then each channel's shaping. The
        same arithmetic as ``_stream_column`` per channel (tests/test_engine_channels.py)."""
        blurred, clean = self._pair_b, self._pair_c
        for ch in range(self.channels):
            codes = self._stream_codes(ch, lm[ch], zone, centre, temp, scale)
            if codes is None:  # encode_codes: nothing to decode
                out[ch] = lm[ch]
                continue
            blurred[ch], clean[ch] = codes
        if self._encode_only:
            return
        t1 = time.perf_counter()
        lbs, lcs = self._streams.decode_pairs(blurred, clean)
        for ch in range(self.channels):
            self._stream_shape(ch, lbs[ch], lcs[ch], lm[ch], detail, out[ch])
        self.stats.decoder += time.perf_counter() - t1

    def _stream_codes(self, k: int, lm: np.ndarray, zone: float, centre: float, temp: float,
                      scale: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Stream ``k``'s column up to its decoders: encode, blur (and the code hook, the tap)
        -> ``(blurred, clean)`` code columns, or None when ``encode_codes`` wants no decode."""
        st, pc = self.stats, time.perf_counter
        codec = self.codecs[k]
        t0 = pc()
        clean = codec.encode(lm)
        # a wild encoder (or a NaN it was fed) must not index outside the codebook
        # (two ufuncs: np.clip's Python wrapper costs more than both on int64)
        np.minimum(clean, self._kmax, out=clean)
        np.maximum(clean, 0, out=clean)
        t1 = pc()
        st.encoder += t1 - t0
        blurred = clean
        if self.samplers is not None:
            blurred = self.samplers[k].step(clean, self._blurred[k], zone, centre, temp, scale)
            t2 = pc()
            st.blur += t2 - t1
            t1 = t2
        if self.code_hook is not None:
            self.code_hook(k, lm, clean, blurred)
            if self._encode_only:  # encode_codes: nothing to decode
                return None
        if self.tap is not None:  # the live view / process --png: what the zone resamples
            vb, va = self._view_before, self._view_after
            if self.samplers is not None:
                self.samplers[k].view_rows(clean, blurred, vb, va)
            else:
                vb[:] = clean[: self.config.rows]
                va[:] = vb
            # linked stereo: one grid for every channel, so a tap on any channel sees it
            self.tap.column(self.tap.channel if self.linked else k, vb, va, zone, centre)
        return blurred, clean

    def _stream_shape(self, k: int, lb: np.ndarray, lc: np.ndarray, lm: np.ndarray, detail: float,
                      out: np.ndarray) -> None:
        """Stream ``k``'s decoded pair -> ``out [F, bins]`` (blur v2 shaping, or v1's detail)."""
        if self.blur_version == 2:
            smear = self._smear * self.samplers[k].time_gate if self.samplers is not None else 0.0
            self.shapers[k].apply(lb, lc, lm, detail, out, smear)
        else:
            apply_detail(lb, lc, lm, detail, out)

    def render(self, x: np.ndarray, block: int = CHUNK) -> np.ndarray:
        """Offline: ``x`` ([n] or [n, channels]) from a reset, latency-compensated: the output
        sample ``i`` answers input sample ``i`` (same shape as ``x``, float32)."""
        x = np.asarray(x)
        D = self.latency_samples
        pad = np.zeros((D,) + x.shape[1:], dtype=x.dtype)
        src = np.concatenate([x, pad])
        self.reset()
        y = np.concatenate([self.process(src[a:a + block]) for a in range(0, len(src), block)])
        return y[D:D + len(x)]

    def encode_codes(self, x: np.ndarray, bands: bool = False):
        """Offline: the encoder's code columns of ``x`` ([n] or [n, channels]) as the engine's
        own column loop produces them (framing, state, padding of :meth:`render`), with the zone
        shut: one ``[n_codes, C]`` int64 grid per stream (per channel; linked stereo has one, from
        the shared analysis) and, with ``bands``, each column's input log-magnitude ``[C, F, bins]``."""
        C = len(self.codecs)
        codes: list[list[np.ndarray]] = [[] for _ in range(C)]
        lms: list[list[np.ndarray]] = [[] for _ in range(C)]

        def hook(ch, lm, clean, blurred):
            codes[ch].append(np.array(clean, dtype=np.int64))
            if bands:
                lms[ch].append(np.array(lm))

        saved, saved_hook = self._params, self.code_hook
        self._params = saved.replace(zone_size=0.0)
        self.code_hook, self._encode_only = hook, True
        try:
            self.render(x)
        finally:
            self._params, self.code_hook, self._encode_only = saved, saved_hook, False
            self.reset()
        n_codes = self._blurred.shape[1]
        grids = [np.stack(c, axis=1) if c else np.zeros((n_codes, 0), np.int64) for c in codes]
        if bands:
            return grids, [np.stack(m) if m else np.zeros((0,)) for m in lms]
        return grids

    def _column_targets(self, p: Params) -> dict[str, float]:
        """The per-column knobs' targets for the snapshot ``p`` (computed once per snapshot)."""
        if p is not self._targets_of:
            self._targets = {k.name: k.target(getattr(p, k.name)) for k in _knobs.COLUMN}
            self._targets_of = p
        return self._targets

    def _ramp(self, name: str, value: float, n: int):
        """Per-sample one-pole of a "sample" knob toward its target over the next n samples
        (closed form): a float when settled, else an array [n]."""
        target = _knobs.BY_NAME[name].target(value)
        g = self._gs[name]
        if g == target:
            return g
        seq = target + (g - target) * self._pow[:n]
        last = float(seq[-1])
        self._gs[name] = target if abs(last - target) < 1e-9 else last
        return seq


def apply_detail(lb: np.ndarray, lc: np.ndarray, lin: np.ndarray, detail: float,
                 out: np.ndarray) -> np.ndarray:
    """The detail knob, in log-magnitude, in place into ``out`` (all ``[F, model_bins]``):
    ``out = lb + detail * (lin - lc)``; ``out = lb`` exactly at detail 0 (``lc`` unused).

    ``lb`` = dec(blurred codes), ``lc`` = dec(the encoder's codes), ``lin`` = the input's own
    log-magnitude (what the encoder saw). Allocates nothing."""
    if detail == 0.0:
        out[...] = lb
        return out
    np.subtract(lin, lc, out=out)
    if detail != 1.0:
        out *= detail
    out += lb
    return out


def _approach(cur: float, target: float, a: float) -> float:
    if cur == target:
        return cur
    v = cur + a * (target - cur)
    return target if abs(target - v) < 1e-4 else v
