"""Optional int8 step graphs (onnxruntime.quantization, static QDQ) and a step-graph timer.

Static quantisation, because the graphs are convolutions (dynamic quantisation in
onnxruntime only covers MatMul/Gemm well; ConvInteger is slow on CPU). Calibration runs the
fp32 step graphs over real columns *in streaming order*, so every state input sees the values
it sees in use. Only Conv / ConvTranspose are quantised (per-channel int8 weights, uint8
activations); the normalisation, the codebook distance + ArgMin and the lookup stay fp32 --
quantising the distance MatMul flips codes wholesale.

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

QUANT_OPS = ["Conv", "ConvTranspose"]


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
    e_feed = {n: np.zeros([int(d) for d in i.shape], np.float32) for n, i in
              zip(e_states, enc.get_inputs()[1:])}
    d_feed = {n: np.zeros([int(d) for d in i.shape], np.float32) for n, i in
              zip(d_states, dec.get_inputs()[1:])}
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


def _quantize_one(src: Path, dst: Path, feeds: list[dict]) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(dst), _Reader(feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=QUANT_OPS,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )


def quantize_step_graphs(folder: str | Path, model, cfg, audio: np.ndarray,
                         max_columns: int = 3000) -> dict[str, Any]:
    """Replace ``folder``'s encoder.onnx / decoder.onnx by static-QDQ int8 versions,
    calibrated on ``audio`` (float32 at the model's rate). Returns a summary for the manifest."""
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
    for name, feeds in ((ENCODER_FILE, enc_feeds), (DECODER_FILE, dec_feeds)):
        src = folder / name
        dst = folder / (name + ".int8")
        _quantize_one(src, dst, feeds)
        m = onnx.load(str(dst))
        onnx.checker.check_model(m, full_check=True)
        shutil.move(str(dst), str(src))
    return {"method": "static QDQ, per-channel int8 weights, uint8 activations, MinMax",
            "ops": QUANT_OPS, "calibration_columns": len(enc_feeds)}


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
