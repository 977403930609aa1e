"""Multiply-accumulates per column: counted in ONNX graphs (Conv, ConvTranspose, MatMul, Gemm),
or read from the bundle manifest's ``macs_per_column``."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from tests.toy_bundle import make_toy_bundle  # noqa: E402
from vqblur.measure.macs import bundle_macs, format_macs, graph_macs  # noqa: E402


def _graph(path):
    from onnx import TensorProto, helper, numpy_helper

    def w(name, shape):
        return numpy_helper.from_array(np.zeros(shape, np.float32), name)

    nodes = [
        # [1,4,10,1] --Conv 8x4x3x1 (pads keep 10)--> [1,8,10,1]: 8*10 outputs x 4*3 = 960
        helper.make_node("Conv", ["x", "wc"], ["c"], kernel_shape=[3, 1], pads=[1, 0, 1, 0]),
        # --ConvTranspose W [8,2,2,1] stride 2--> [1,2,20,1]: 80 inputs x 2*2 = 320
        helper.make_node("ConvTranspose", ["c", "wt"], ["t"], kernel_shape=[2, 1], strides=[2, 1]),
        helper.make_node("Reshape", ["t", "shp"], ["f"]),  # [2, 20]
        # [2,20] x [20,5] -> [2,5]: 10 x 20 = 200
        helper.make_node("MatMul", ["f", "wm"], ["m"]),
        # Gemm [2,5] x [5,3]: 6 x 5 = 30
        helper.make_node("Gemm", ["m", "wg"], ["y"]),
        helper.make_node("Relu", ["y"], ["out"]),  # not counted
    ]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 10, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 3])],
        [w("wc", [8, 4, 3, 1]), w("wt", [8, 2, 2, 1]), w("wm", [20, 5]), w("wg", [5, 3]),
         numpy_helper.from_array(np.array([2, 20], np.int64), "shp")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def test_graph_walk_counts_each_op(tmp_path):
    _graph(tmp_path / "g.onnx")
    r = graph_macs(tmp_path / "g.onnx")
    assert r["by_op"] == {"Conv": 960, "ConvTranspose": 320, "MatMul": 200, "Gemm": 30}
    assert r["macs"] == 960 + 320 + 200 + 30 and r["nodes"] == 4 and r["unresolved"] == []


def test_toy_bundle_has_no_multiplies_to_count(tmp_path):
    """The toy codec is reductions and element-wise ops only: 0 MACs, counted from the graphs."""
    from vqblur.engine.bundle import load_bundle

    m = bundle_macs(load_bundle(make_toy_bundle(tmp_path / "toy")))
    assert m["encoder"] == 0 and m["decoder"] == 0
    assert "ONNX graphs" in m["source"]


def test_manifest_figures_win(tmp_path):
    from vqblur.engine.bundle import load_bundle, write_manifest

    root = make_toy_bundle(tmp_path / "toy")
    man = json.loads((root / "manifest.json").read_text())
    man["macs_per_column"] = {"encoder": 2_000_000, "decoder": 2_100_000, "decoder_batch2": 4_200_000}
    write_manifest(root, man)
    m = bundle_macs(load_bundle(root))
    assert (m["encoder"], m["decoder"], m["decoder_batch2"]) == (2_000_000, 2_100_000, 4_200_000)
    assert m["source"].startswith("bundle manifest")


def test_format():
    assert format_macs(None) == "-" and format_macs(2_100_000) == "2.10 M" and format_macs(1500) == "1.5 k"
