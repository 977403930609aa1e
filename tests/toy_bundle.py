"""A toy model bundle for tests, built without torch (``onnx.helper`` + numpy).

Stable API (other tests use it)::

    from tests.toy_bundle import make_toy_bundle
    root = make_toy_bundle(tmp_path / "toy", rows=20, K=256)   # -> Path of the bundle folder
    bundle = vqblur.engine.bundle.load_bundle(root)

``make_toy_bundle(dir, rows=20, K=256, *, sample_rate=48000, n_fft=320, hop=80,
frames_per_column=2, model_bins=None, offsets=None, nb_table=None, dynamic_batch=False) -> Path``

It writes real ONNX step graphs (opset 17, fixed shapes, batch 1) that obey the step-graph
contract of docs/ARCHITECTURE.md, so the engine runs them exactly as it runs a trained model:

* ``encoder.onnx``: ``logmag [1,F,model_bins]`` + ``enc_s0_in [1,rows]`` ->
  ``codes [1,rows] int64`` + ``enc_s0_out [1,rows]``. Each row is a band of
  ``model_bins // rows`` bins; ``band = mean(logmag over the column's F frames and the band's
  bins)``; the code quantises ``0.5 * band + 0.5 * previous column's band`` (the state carries
  the previous band) to K levels spaced evenly over ``[ln(log_eps), ln(n_fft)]``.
* ``decoder.onnx``: ``codes [1,rows] int64`` + ``dec_s0_in [1,rows]`` ->
  ``logmag [1,F,model_bins]`` (each band's level, constant over its bins and frames) +
  ``dec_s0_out = 0.5 * dec_s0_in + 0.5 * level`` (carried, does not affect the output).
  With ``dynamic_batch=True`` the decoder's leading axis is a dynamic ``batch`` (inputs and
  outputs), so one run decodes several streams (``OnnxCodec.decode_pair``'s batch-2 path).
* ``nb_table.npz``: a Laplace-uniform Naive Bayes table of the documented shapes
  (log_prior [K], log_row [rows,K], log_neigh [O,K,K], offsets [O,2]; default offsets the
  8-neighbourhood), or the arrays given in ``nb_table``.
* ``manifest.json``: written by ``vqblur.engine.bundle.write_manifest`` (sha256 of every file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqblur.engine.blur import OFFSETS_8

#: the engine's 8-neighbourhood (declared once, :data:`vqblur.engine.blur.OFFSETS_8`), as an array
EIGHT_NEIGHBOURS = np.array(OFFSETS_8, dtype=np.int64)


def _f32(name, value):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _i64(name, value):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=np.int64), name)


def _save(graph, path: Path) -> None:
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vqblur-toy"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def toy_levels(K: int, n_fft: int, log_eps: float) -> tuple[float, float]:
    """(lo, hi): the toy codec's quantisation range in log-magnitude."""
    return float(np.log(log_eps)), float(np.log(n_fft))


def make_toy_bundle(
    dir,
    rows: int = 20,
    K: int = 256,
    *,
    sample_rate: int = 48000,
    n_fft: int = 320,
    hop: int = 80,
    frames_per_column: int = 2,
    model_bins: int | None = None,
    offsets=None,
    nb_table: dict | None = None,
    dynamic_batch: bool = False,
) -> Path:
    from onnx import TensorProto, helper

    from vqblur.engine.bundle import framing_latency, write_manifest

    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    F = frames_per_column
    mb = n_fft // 2 if model_bins is None else model_bins
    if mb % rows:
        raise ValueError(f"model_bins {mb} must be a multiple of rows {rows}")
    bpr = mb // rows
    log_eps = 1e-5
    lo, hi = toy_levels(K, n_fft, log_eps)
    scale = (K - 1) / (hi - lo)

    # encoder
    enc = helper.make_graph(
        [
            helper.make_node("Reshape", ["logmag", "shape4"], ["x4"]),
            helper.make_node("ReduceMean", ["x4"], ["band"], axes=[1, 3], keepdims=0),
            helper.make_node("Mul", ["band", "half"], ["band_h"]),
            helper.make_node("Mul", ["enc_s0_in", "half"], ["prev_h"]),
            helper.make_node("Add", ["band_h", "prev_h"], ["smooth"]),
            helper.make_node("Sub", ["smooth", "lo"], ["shifted"]),
            helper.make_node("Mul", ["shifted", "scale"], ["scaled"]),
            helper.make_node("Round", ["scaled"], ["rounded"]),
            helper.make_node("Clip", ["rounded", "zero", "kmax"], ["clipped"]),
            helper.make_node("Cast", ["clipped"], ["codes"], to=TensorProto.INT64),
            helper.make_node("Identity", ["band"], ["enc_s0_out"]),
        ],
        "toy_encoder",
        [
            helper.make_tensor_value_info("logmag", TensorProto.FLOAT, [1, F, mb]),
            helper.make_tensor_value_info("enc_s0_in", TensorProto.FLOAT, [1, rows]),
        ],
        [
            helper.make_tensor_value_info("codes", TensorProto.INT64, [1, rows]),
            helper.make_tensor_value_info("enc_s0_out", TensorProto.FLOAT, [1, rows]),
        ],
        initializer=[
            _i64("shape4", [1, F, rows, bpr]),
            _f32("half", 0.5),
            _f32("lo", lo),
            _f32("scale", scale),
            _f32("zero", 0.0),
            _f32("kmax", K - 1),
        ],
    )
    _save(enc, root / "encoder.onnx")

    # decoder (batch B = 1, or dynamic: Expand broadcasts [B,1,rows,1] to [B,F,rows,bpr])
    B = "batch" if dynamic_batch else 1
    dec = helper.make_graph(
        [
            helper.make_node("Cast", ["codes"], ["codes_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["codes_f", "step"], ["lv0"]),
            helper.make_node("Add", ["lv0", "lo"], ["level"]),
            helper.make_node("Unsqueeze", ["level", "ax13"], ["level4"]),
            helper.make_node("Expand", ["level4", "eshape4"], ["exp4"]),
            helper.make_node("Reshape", ["exp4", "shape3"], ["logmag"]),
            helper.make_node("Mul", ["dec_s0_in", "half"], ["s_h"]),
            helper.make_node("Mul", ["level", "half"], ["l_h"]),
            helper.make_node("Add", ["s_h", "l_h"], ["dec_s0_out"]),
        ],
        "toy_decoder",
        [
            helper.make_tensor_value_info("codes", TensorProto.INT64, [B, rows]),
            helper.make_tensor_value_info("dec_s0_in", TensorProto.FLOAT, [B, rows]),
        ],
        [
            helper.make_tensor_value_info("logmag", TensorProto.FLOAT, [B, F, mb]),
            helper.make_tensor_value_info("dec_s0_out", TensorProto.FLOAT, [B, rows]),
        ],
        initializer=[
            _f32("step", 1.0 / scale),
            _f32("lo", lo),
            _f32("half", 0.5),
            _i64("ax13", [1, 3]),
            _i64("eshape4", [1, F, 1, bpr]),
            _i64("shape3", [0 if dynamic_batch else 1, F, mb]),
        ],
    )
    _save(dec, root / "decoder.onnx")

    # Naive Bayes table
    if nb_table is None:
        offs = EIGHT_NEIGHBOURS if offsets is None else np.asarray(offsets, dtype=np.int64)
        O = len(offs)
        nb_table = {
            "log_prior": np.full(K, -np.log(K), np.float32),
            "log_row": np.full((rows, K), -np.log(rows), np.float32),
            "log_neigh": np.full((O, K, K), -np.log(K), np.float32),
            "offsets": offs,
            "alpha": np.float32(1.0),
            "n_cells": np.int64(0),
            "codebook_size": np.int64(K),
            "rows": np.int64(rows),
        }
    np.savez(root / "nb_table.npz", **nb_table)

    manifest = {
        "format": "vqblur-bundle",
        # a batched decoder is bundle format 2 (one level, no macro map); else format 1
        "format_version": 2 if dynamic_batch else 1,
        **({"levels": 1, "rows_macro": 0, "macro_factor": 0} if dynamic_batch else {}),
        "created": "2026-11-22T00:00:00Z",
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "hop": hop,
        "window": "sqrt_hann_periodic",
        "log_eps": log_eps,
        "model_bins": mb,
        "frames_per_column": F,
        "rows": rows,
        "codebook_size": K,
        "latency_samples": framing_latency(n_fft, hop, F),
        "normalisation": {"mean": [0.0] * mb, "std": [1.0] * mb},
        "encoder": {
            "file": "encoder.onnx",
            "states": [{"name_in": "enc_s0_in", "name_out": "enc_s0_out", "shape": [1, rows]}],
        },
        "decoder": {
            "file": "decoder.onnx",
            "states": [{"name_in": "dec_s0_in", "name_out": "dec_s0_out", "shape": [1, rows]}],
        },
        "nb": {"file": "nb_table.npz"},
        "precision": "fp32",
        "files": {"encoder.onnx": "", "decoder.onnx": "", "nb_table.npz": ""},
        "training": {"config": {"toy": True}, "metrics": {}},
    }
    write_manifest(root, manifest)
    return root
