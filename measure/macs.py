"""Multiply-accumulates per code column: the design figure next to the measured microseconds.

Each step graph runs once per code column, so a graph's MACs per run are its MACs per column.
:func:`bundle_macs` reads them from the bundle manifest's ``"macs_per_column"`` (a dict such
as ``{"encoder": int, "decoder": int, ...}``, written by the export) and, when that key is
absent, counts them in the ONNX graphs with :func:`graph_macs` (needs the ``onnx`` package, in
the ``train`` extra); without either, the figures are None (printed "-").

Counted nodes (after ONNX shape inference; the graphs have fixed shapes):

* ``Conv``           output elements x (C_in / group) x kernel elements  (= prod(W.shape[1:]))
* ``ConvTranspose``  input elements x (C_out / group) x kernel elements  (= prod(W.shape[1:]))
* ``MatMul``         output elements x the shared dimension K
* ``Gemm``           output elements x K (``transA`` honoured)

Element-wise ops, reductions and nodes inside control-flow subgraphs are not counted; a
counted node whose shapes inference could not resolve is listed in ``unresolved``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vqblur.engine.bundle import Bundle

COUNTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _shapes(model) -> dict[str, tuple[int, ...] | None]:
    """Static shapes of every named value of a shape-inferred model (None where unknown)."""
    out: dict[str, tuple[int, ...] | None] = {}
    g = model.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            out[vi.name] = None
            continue
        dims = []
        for d in t.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims = None
                break
        out[vi.name] = tuple(dims) if dims is not None else None
    for init in g.initializer:
        out[init.name] = tuple(int(d) for d in init.dims)
    return out


def graph_macs(path: str | Path) -> dict[str, Any]:
    """MACs of one run of the ONNX graph at ``path``.

    -> ``{"macs": int, "by_op": {op: int}, "nodes": int (counted), "unresolved": [node names]}``.
    Raises ImportError when the ``onnx`` package is missing."""
    import onnx
    from onnx import shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    shp = _shapes(model)
    total = 0
    by_op = {op: 0 for op in COUNTED_OPS}
    counted = 0
    unresolved: list[str] = []
    for node in model.graph.node:
        if node.op_type not in COUNTED_OPS:
            continue
        ins = [shp.get(n) for n in node.input]
        out = shp.get(node.output[0]) if node.output else None
        m = None
        if node.op_type == "Conv" and len(ins) >= 2 and ins[1] and out:
            m = int(np.prod(out)) * int(np.prod(ins[1][1:]))
        elif node.op_type == "ConvTranspose" and len(ins) >= 2 and ins[0] and ins[1]:
            m = int(np.prod(ins[0])) * int(np.prod(ins[1][1:]))
        elif node.op_type == "MatMul" and len(ins) >= 2 and ins[0] and out:
            m = int(np.prod(out)) * int(ins[0][-1])
        elif node.op_type == "Gemm" and len(ins) >= 2 and ins[0] and out:
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            k = ins[0][0] if trans_a else ins[0][-1]
            m = int(np.prod(out)) * int(k)
        if m is None:
            unresolved.append(node.name or f"{node.op_type}#{counted + len(unresolved)}")
            continue
        total += m
        by_op[node.op_type] += m
        counted += 1
    return {"macs": int(total), "by_op": {k: v for k, v in by_op.items() if v}, "nodes": counted,
            "unresolved": unresolved}


def bundle_macs(bundle: Bundle) -> dict[str, Any]:
    """MACs per code column of a bundle's graphs.

    -> ``{"encoder": int | None, "decoder": int | None, ..., "source": str}``: the manifest's
    ``macs_per_column`` entries (every integer one: per level, second decode, ...) when
    recorded, else the ONNX graph walk, else None with the reason in ``source``."""
    rec = bundle.manifest.get("macs_per_column")
    if isinstance(rec, dict) and rec:
        out: dict[str, Any] = {k: int(v) for k, v in rec.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.setdefault("encoder", None)
        out.setdefault("decoder", None)
        out["source"] = "bundle manifest (macs_per_column)"
        return out
    try:
        enc = graph_macs(bundle.encoder_path)
        dec = graph_macs(bundle.decoder_path)
    except ImportError:
        return {"encoder": None, "decoder": None,
                "source": "not recorded in the manifest, and the onnx package is not installed"}
    except Exception as exc:  # noqa: BLE001 - a graph onnx cannot analyse must not stop the bench
        return {"encoder": None, "decoder": None, "source": f"ONNX graph walk failed: {exc}"}
    out = {"encoder": enc["macs"], "decoder": dec["macs"],
           "source": "counted in the ONNX graphs (Conv, ConvTranspose, MatMul, Gemm)"}
    unres = enc["unresolved"] + dec["unresolved"]
    if unres:
        out["unresolved_nodes"] = unres
    return out


def format_macs(n: int | None) -> str:
    """2_100_000 -> '2.10 M'; None -> '-'."""
    if n is None:
        return "-"
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} k"
    return str(int(n))
