"""Optional int8 step graphs (onnxruntime.quantization, static) and a step-graph timer.

Static quantisation, because the graphs are convolutions (dynamic quantisation in
onnxruntime only covers MatMul/Gemm well; ConvInteger is slow on CPU). Calibration runs the
fp32 step graphs over real columns *in streaming order*, so every state input sees the values
it sees in use. Only the Conv nodes are quantised (per-channel int8 weights, uint8
activations, MinMax ranges), in QOperator format (QLinearConv: measured faster here than QDQ,
whose decoder was slower than fp32); the normalisation, the ConvTranspose upsamplers, the
codebook distance + ArgMin and the lookup stay fp32 -- quantising the distance MatMul would
flip codes wholesale. All ops are standard ONNX (the checker passes).

See export/INT8.md for the measured speed and quality against fp32.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

QUANT_OPS = ["Conv"]
QUANT_FORMAT = "QOperator"  # or "QDQ"


def _session(path: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _io(sess) -> tuple[str, list[str], list[str]]:
    ins = [i.name for i in sess.get_inputs()]
    outs = [o.name for o in sess.get_outputs()]
    return ins[0], ins[1:], outs


def stream_feeds(enc_path: Path, dec_path: Path, logmag: np.ndarray, F: int,
                 max_columns: int | None = None) -> tuple[list[dict], list[dict]]:
    """Run the fp32 step graphs over logmag [bins, T] and record every call's input feed."""
    enc, dec = _session(enc_path), _session(dec_path)
    e_x, e_states, e_outs = _io(enc)
    d_x, d_states, d_outs = _io(dec)
    # a symbolic axis (format 2's decoder batch) is one stream here
    dims = lambda i: [d if isinstance(d, int) else 1 for d in i.shape]  # noqa: E731
    e_feed = {n: np.zeros(dims(i), np.float32) for n, i in zip(e_states, enc.get_inputs()[1:])}
    d_feed = {n: np.zeros(dims(i), np.float32) for n, i in zip(d_states, dec.get_inputs()[1:])}
    C = logmag.shape[1] // F
    if max_columns:
        C = min(C, max_columns)
    enc_feeds, dec_feeds = [], []
    for c in range(C):
        x = np.ascontiguousarray(logmag[:, c * F:(c + 1) * F].T[None], np.float32)
        feed = {e_x: x, **e_feed}
        enc_feeds.append(feed)
        out = enc.run(e_outs, feed)
        e_feed = dict(zip(e_states, out[1:]))
        dfeed = {d_x: out[0], **d_feed}
        dec_feeds.append(dfeed)
        dout = dec.run(d_outs, dfeed)
        d_feed = dict(zip(d_states, dout[1:]))
    return enc_feeds, dec_feeds


class _Reader:
    """onnxruntime CalibrationDataReader over recorded feeds."""

    def __init__(self, feeds: list[dict]) -> None:
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


def _quantize_one(src: Path, dst: Path, feeds: list[dict], fmt: str = QUANT_FORMAT) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(dst), _Reader(feeds),
            quant_format=QuantFormat.QOperator if fmt == "QOperator" else QuantFormat.QDQ,
            op_types_to_quantize=QUANT_OPS,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )


def quantize_step_graphs(folder: str | Path, model, cfg, audio: np.ndarray,
                         max_columns: int = 3000, parts=("encoder", "decoder"),
                         fmt: str = QUANT_FORMAT) -> dict[str, Any]:
    """Replace ``folder``'s encoder.onnx and/or decoder.onnx (``parts``) by static int8
    versions, calibrated on ``audio`` (float32 at the model's rate). Returns a summary for the
    manifest."""
    import onnx
    import torch

    from vqblur.export.onnx_export import DECODER_FILE, ENCODER_FILE
    from vqblur.training.features import log_magnitude

    folder = Path(folder)
    lm = log_magnitude(torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None],
                       cfg.audio)[0].numpy()
    F = cfg.audio.frames_per_column
    enc_feeds, dec_feeds = stream_feeds(folder / ENCODER_FILE, folder / DECODER_FILE, lm, F,
                                        max_columns)
    if not enc_feeds:
        raise ValueError("int8 calibration needs at least one code column of audio")
    for part, name, feeds in (("encoder", ENCODER_FILE, enc_feeds), ("decoder", DECODER_FILE, dec_feeds)):
        if part not in parts:
            continue
        src = folder / name
        dst = folder / (name + ".int8")
        _quantize_one(src, dst, feeds, fmt)
        m = onnx.load(str(dst))
        onnx.checker.check_model(m, full_check=True)
        shutil.move(str(dst), str(src))
    return {"method": f"static {fmt}, per-channel int8 weights, uint8 activations, MinMax",
            "ops": QUANT_OPS, "parts": list(parts), "calibration_columns": len(enc_feeds)}


def time_step_graphs(bundle_dir: str | Path, columns: int = 600, threads: int = 1,
                     warmup: int = 50, seed: int = 0) -> dict[str, float]:
    """Median / p99 microseconds per code column (encoder, decoder, both) of a bundle's step
    graphs in onnxruntime, ``threads`` intra-op threads, fed a streaming sequence of
    random-ish columns (states carried)."""
    from vqblur.engine.bundle import load_bundle
    from vqblur.engine.codec import OnnxCodec

    b = load_bundle(bundle_dir)
    codec = OnnxCodec(b, threads=threads)
    rng = np.random.default_rng(seed)
    cols = (rng.standard_normal((columns + warmup, b.frames_per_column, b.model_bins)) * 2.0
            - 4.0).astype(np.float32)
    te, td, tt = [], [], []
    for i, col in enumerate(cols):
        t0 = time.perf_counter()
        k = codec.encode(col)
        t1 = time.perf_counter()
        codec.decode(k)
        t2 = time.perf_counter()
        if i >= warmup:
            te.append(t1 - t0)
            td.append(t2 - t1)
            tt.append(t2 - t0)

    def us(x, q=None):
        return 1e6 * (statistics.median(x) if q is None else float(np.quantile(x, q)))

    return {"encoder_median_us": us(te), "decoder_median_us": us(td), "total_median_us": us(tt),
            "total_p99_us": us(tt, 0.99), "columns": columns, "threads": threads}


def compare_bundles(reference_dir: str | Path, other_dir: str | Path, audio: np.ndarray,
                    timing_columns: int = 1000, repeats: int = 2) -> dict[str, Any]:
    """Quality and speed of bundle ``other`` (e.g. int8) against ``reference`` (fp32).

    Both are streamed end to end (each its own codes) over ``audio``; quality is measured on
    the model's bins against the input's magnitudes (spectral convergence and log-spectral
    distance, dB, common/spectral.py) and between the two (code agreement, mean/max abs
    log-magnitude difference). Speed: median us per column (encoder + decoder, one thread),
    best of ``repeats`` interleaved runs (a background load inflates both alike).
    """
    from vqblur.engine.bundle import load_bundle
    from vqblur.common.spectral import log_spectral_distance_db, spectral_convergence_db
    from vqblur.export.parity import stream_bundle

    ref_b, oth_b = load_bundle(reference_dir), load_bundle(other_dir)
    lm = _numpy_logmag(audio, ref_b)
    out: dict[str, Any] = {}
    rc, ry, _ = stream_bundle(ref_b, lm)
    oc, oy, _ = stream_bundle(oth_b, lm)
    T = ry.shape[1]
    ref_mag = np.exp(lm[:, :T].astype(np.float64))
    for tag, y in (("reference", ry), ("other", oy)):
        est = np.maximum(np.exp(y.astype(np.float64)) - ref_b.log_eps, 0.0)
        out[f"{tag}_sc_db"] = spectral_convergence_db(ref_mag, est)
        out[f"{tag}_lsd_db"] = log_spectral_distance_db(ref_mag, est)
    d = np.abs(oy.astype(np.float64) - ry)
    out["code_agreement"] = float((rc == oc).mean())
    out["logmag_mean_abs_diff"] = float(d.mean())
    out["logmag_max_abs_diff"] = float(d.max())
    times: dict[str, list] = {"reference": [], "other": []}
    for _ in range(repeats):
        for tag, b in (("reference", reference_dir), ("other", other_dir)):
            times[tag].append(time_step_graphs(b, timing_columns))
    for tag, rs in times.items():
        best = min(rs, key=lambda r: r["total_median_us"])
        out[f"{tag}_encoder_us"] = best["encoder_median_us"]
        out[f"{tag}_decoder_us"] = best["decoder_median_us"]
        out[f"{tag}_total_us"] = best["total_median_us"]
    out["speedup"] = out["reference_total_us"] / out["other_total_us"]
    out["seconds"] = round(lm.shape[1] * ref_b.hop / ref_b.sample_rate, 2)
    return out


def _numpy_logmag(audio: np.ndarray, b) -> np.ndarray:
    """The engine's framing (left-padded, the bundle's analysis window, no centre): audio ->
    [model_bins, T]."""
    from vqblur.common.windows import analysis_window

    def frames(n_fft: int, win: np.ndarray) -> np.ndarray:
        x = np.concatenate([np.zeros(n_fft - b.hop), np.asarray(audio, np.float64)])
        n = (len(x) - n_fft) // b.hop + 1
        idx = np.arange(n_fft)[None, :] + b.hop * np.arange(n)[:, None]
        return np.abs(np.fft.rfft(x[idx] * win, axis=1))

    layout = b.split_layout() if hasattr(b, "split_layout") else None
    if layout is not None:  # codec v5: the long window's bins below the crossover, the short's above
        mag = np.concatenate([frames(b.long_n_fft, analysis_window(b.long_n_fft, b.n_fft))[:, layout.long_bins],
                              frames(b.n_fft, analysis_window(b.n_fft))[:, layout.short_bins]], axis=1)
    else:
        mag = frames(b.n_fft, analysis_window(b.n_fft, b.synthesis_len))[:, : b.model_bins]
    lm = np.log(mag + b.log_eps).T.astype(np.float32)
    F = b.frames_per_column
    return lm[:, : lm.shape[1] - lm.shape[1] % F]
