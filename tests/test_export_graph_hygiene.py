"""Exported step graphs: opset >= 17, the full ONNX checker passes, every input/output shape
is fixed (batch 1; the decoder's axis 0 is a batch of streams), names and order follow the manifest, dtypes follow the
contract, and parametrisations (weight norm) are baked into plain weights."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.onnx_export import (export_step_graphs, has_parametrizations,  # noqa: E402
                                       strip_parametrizations)
from vqblur.export.testing import make_nb_table, make_tiny_checkpoint  # noqa: E402
from vqblur.training.checkpoint import load_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("hygiene")
    ckpt = make_tiny_checkpoint(root / "run")
    nb = make_nb_table(root / "nb_table.npz", rows=20, K=32)
    return export_bundle(ckpt, nb, root / "bundle")


def _dims(value_info):
    return [(d.dim_value if d.HasField("dim_value") else d.dim_param or "?")
            for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_opset_checker_fixed_shapes_and_contract_names(bundle, part):
    m = json.loads((bundle / "manifest.json").read_text())
    model = onnx.load(str(bundle / m[part]["file"]))
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) >= 17
    onnx.checker.check_model(model, full_check=True)

    F, bins = m["frames_per_column"], m["model_bins"]
    n = m["levels"] * m["rows"] + m["rows_macro"]
    states = m[part]["states"]
    assert states, "the model has causal convolutions, so its step graphs carry state"
    # format 2: the decoder's axis 0 is a batch of streams ("batch"), everything else fixed
    B = 1 if part == "encoder" else "batch"
    if part == "encoder":
        want_in = [("logmag", [1, F, bins], onnx.TensorProto.FLOAT)]
        want_out = [("codes", [1, n], onnx.TensorProto.INT64)]
    else:
        want_in = [("codes", [B, n], onnx.TensorProto.INT64)]
        want_out = [("logmag", [B, F, bins], onnx.TensorProto.FLOAT)]
    want_in += [(s["name_in"], [B, *s["shape"][1:]], onnx.TensorProto.FLOAT) for s in states]
    want_out += [(s["name_out"], [B, *s["shape"][1:]], onnx.TensorProto.FLOAT) for s in states]
    got_in = [(i.name, _dims(i), i.type.tensor_type.elem_type) for i in model.graph.input]
    got_out = [(o.name, _dims(o), o.type.tensor_type.elem_type) for o in model.graph.output]
    assert got_in == want_in
    assert got_out == want_out
    for i, s in enumerate(states):
        assert s["name_in"] == f"{part[:3]}_s{i}_in" and s["name_out"] == f"{part[:3]}_s{i}_out"
    # weights are initializers, not inputs; shape inference stored shapes for the values, fixed
    # but for the decoder's batch axis
    assert not {i.name for i in model.graph.initializer} & {i.name for i in model.graph.input}
    for vi in model.graph.value_info:
        dims = _dims(vi)
        assert all((isinstance(d, int) and d > 0) or (part == "decoder" and d == "batch")
                   for d in dims), (vi.name, dims)


def test_state_specs_match_the_model(bundle, tmp_path):
    """One state per causal conv of the model, in step order, stacked along channels: the
    model's cache [1, C, H, h] (h past columns) is [1, h * C, H, 1] in the graphs."""
    m = json.loads((bundle / "manifest.json").read_text())
    model, _, _ = load_checkpoint(bundle.parent / "run" / "model.pt")
    stacked = lambda shapes: [(1, h * c, rows, 1) for _, c, rows, h in shapes]  # noqa: E731
    assert [tuple(s["shape"]) for s in m["encoder"]["states"]] == stacked(model.encoder_state_shapes())
    assert [tuple(s["shape"]) for s in m["decoder"]["states"]] == stacked(model.decoder_state_shapes())


def test_weight_norm_is_baked_in(tmp_path):
    from torch.nn.utils.parametrizations import weight_norm

    ckpt = make_tiny_checkpoint(tmp_path / "run", run_folder=False)
    model, cfg, _ = load_checkpoint(ckpt)
    plain_dir = tmp_path / "plain"
    export_step_graphs(model, plain_dir)
    for conv in (model.encoder.net[0].conv, model.decoder.net[0]):
        weight_norm(conv)
    assert has_parametrizations(model)
    stripped = strip_parametrizations(model)
    assert not has_parametrizations(stripped) and has_parametrizations(model)  # a copy
    wn_dir = tmp_path / "wn"
    enc_path, dec_path, _, _ = export_step_graphs(model, wn_dir)
    for name in ("encoder.onnx", "decoder.onnx"):
        g_plain = onnx.load(str(plain_dir / name)).graph
        g_wn = onnx.load(str(wn_dir / name)).graph
        assert len(g_wn.node) == len(g_plain.node)  # no norm computation left in the graph
        assert not any("parametrizations" in t.name or "original" in t.name for t in g_wn.initializer)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(dec_path), providers=["CPUExecutionProvider"])
    codes = np.arange(cfg.rows, dtype=np.int64)[None] % cfg.model.codebook_size
    feed = {"codes": codes, **{i.name: np.zeros((1, *i.shape[1:]), np.float32)
                               for i in sess.get_inputs()[1:]}}
    y = sess.run(None, feed)[0]
    with torch.no_grad():
        y_t, _ = model.decoder_step(torch.from_numpy(codes)[:, None], None,
                                    [torch.zeros(s) for s in model.decoder_state_shapes()])
    assert np.abs(y - y_t.numpy()).max() <= 1e-4
