"""Damaged or hostile model bundles are refused with a BundleError naming the file and the
problem -- at load or when the ONNX sessions open -- never an onnxruntime traceback, a
MemoryError or a crash mid-stream.

Complements tests/test_bundle_loading.py (which covers wrong hash, truncation caught by the
hash, missing file/manifest, malformed JSON, newer format_version, missing keys, NB table
shape, graph input names). Here the damage is done *and the hashes re-written*, so only the
deeper checks can catch it: a truncated or garbage ONNX, swapped graphs, graphs of another
shape or dtype, a graph that loads but fails when run, NB tables with NaN / pickled objects /
absurd offsets, manifests with absurd sizes. And the user-facing path: `vqblur process --bundle`
exits 2 with one line naming the file.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main
from vqblur.engine.bundle import load_bundle, write_manifest
from vqblur.engine.core import Engine
from vqblur.common.errors import BundleError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("pristine") / "toy")


@pytest.fixture(scope="module")
def rows10(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("rows10") / "toy", rows=10)


@pytest.fixture
def bundle(pristine, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(pristine, dst)
    return dst


def _rehash(root):
    write_manifest(root, json.loads((root / "manifest.json").read_text()))


def _edit_manifest(root, fn):
    m = json.loads((root / "manifest.json").read_text())
    fn(m)
    (root / "manifest.json").write_text(json.dumps(m))


def _edit_nb(root, fn):
    with np.load(root / "nb_table.npz") as z:
        d = dict(z)
    fn(d)
    np.savez(root / "nb_table.npz", **d)
    _rehash(root)


def _refused(root, pattern):
    """Loading the bundle and opening an Engine on it fails with a BundleError matching."""
    with pytest.raises(BundleError, match=pattern) as ei:
        Engine(root)
    return str(ei.value)


# --------------------------------------------------------------------------- ONNX graphs
def test_truncated_onnx_with_rewritten_hash(bundle):
    p = bundle / "encoder.onnx"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    _rehash(bundle)
    load_bundle(bundle)  # the hash and the manifest are fine now
    msg = _refused(bundle, r"encoder\.onnx: onnxruntime cannot load")
    assert "Traceback" not in msg


@pytest.mark.parametrize("data", [b"", b"\x00" * 100, b"not a protobuf at all" * 10])
def test_garbage_onnx_with_rewritten_hash(bundle, data):
    (bundle / "decoder.onnx").write_bytes(data)
    _rehash(bundle)
    _refused(bundle, r"decoder\.onnx: onnxruntime cannot load")


def test_swapped_encoder_and_decoder(bundle):
    enc, dec = (bundle / "encoder.onnx").read_bytes(), (bundle / "decoder.onnx").read_bytes()
    (bundle / "encoder.onnx").write_bytes(dec)
    (bundle / "decoder.onnx").write_bytes(enc)
    _rehash(bundle)
    _refused(bundle, r"encoder\.onnx: graph inputs are \['codes'")


def test_graph_of_another_shape(bundle, rows10):
    shutil.copy(rows10 / "decoder.onnx", bundle / "decoder.onnx")
    _rehash(bundle)
    _refused(bundle, r"decoder\.onnx: codes has shape \[1, 10\], expected \[1, 20\]")


def _rewrite_graph(path, fn):
    import onnx

    model = onnx.load(str(path))
    fn(model.graph)
    onnx.save(model, str(path))


def test_graph_that_loads_but_fails_when_run(bundle):
    """Declared shapes match the contract, but a Reshape inside cannot run: refused at load,
    not at the first audio block."""
    from onnx import numpy_helper

    def bad_reshape(g):
        for i, init in enumerate(g.initializer):
            if init.name == "shape4":
                g.initializer[i].CopyFrom(
                    numpy_helper.from_array(np.array([1, 2, 20, 9], np.int64), "shape4"))

    _rewrite_graph(bundle / "encoder.onnx", bad_reshape)
    _rehash(bundle)
    msg = _refused(bundle, r"encoder\.onnx: ")
    assert "run" in msg


def test_graph_with_wrong_output_dtype(bundle):
    """codes must be int64: a graph that returns float codes is refused by name."""
    from onnx import TensorProto

    def float_codes(g):
        for n in g.node:
            if n.op_type == "Cast" and n.output[0] == "codes":
                n.attribute[0].i = TensorProto.FLOAT
        g.output[0].type.tensor_type.elem_type = TensorProto.FLOAT

    _rewrite_graph(bundle / "encoder.onnx", float_codes)
    _rehash(bundle)
    _refused(bundle, r"encoder\.onnx: .*codes.*(int64|type)")


# --------------------------------------------------------------------------- NB table
@pytest.mark.parametrize(
    "edit,pattern",
    [
        (lambda d: d["log_neigh"].__setitem__((0, 0, 0), np.nan), r"nb_table\.npz: .*NaN"),
        (lambda d: d.update(log_prior=np.array([object()] * 256, dtype=object)),
         r"nb_table\.npz: .*(pickle|object|readable)"),
        (lambda d: d.update(log_prior=np.zeros(256, np.int64)), r"nb_table\.npz: .*dtype"),
        (lambda d: d.update(log_neigh=d["log_neigh"][:, :128, :128]), r"nb_table\.npz: 'log_neigh'"),
        (lambda d: d.pop("offsets"), r"nb_table\.npz: .*'offsets'"),
        (lambda d: d.update(offsets=np.array([[0, 0]] * 8)), r"nb_table\.npz: .*offsets"),
        (lambda d: d["offsets"].__setitem__(0, (-1, -10**9)), r"nb_table\.npz: .*offset"),
        (lambda d: d["offsets"].__setitem__(0, (10**9, -1)), r"nb_table\.npz: .*offset"),
    ],
    ids=["nan", "pickled-object", "int-dtype", "wrong-K", "no-offsets", "zero-offsets",
         "absurd-column-offset", "absurd-row-offset"],
)
def test_hostile_nb_table_with_rewritten_hash(bundle, edit, pattern):
    def fn(d):
        for k in ("log_neigh", "offsets"):
            if k in d:
                d[k] = d[k].copy()
        edit(d)

    _edit_nb(bundle, fn)
    _refused(bundle, pattern)


def test_nb_table_that_is_not_a_zip(bundle):
    (bundle / "nb_table.npz").write_bytes(np.random.default_rng(0).bytes(500))
    _rehash(bundle)
    _refused(bundle, r"nb_table\.npz: not a readable \.npz")


# --------------------------------------------------------------------------- manifest
@pytest.mark.parametrize(
    "edit,pattern",
    [
        (lambda m: m.update(n_fft=2**40, hop=2**38, latency_samples=2**40 - 1 + 2**38), "n_fft"),
        (lambda m: m.update(sample_rate=10**12), "sample_rate"),
        (lambda m: m.update(codebook_size=2**40), "codebook_size"),
        (lambda m: m["encoder"]["states"][0].update(shape=[1, 10**12]), r"enc.*shape|state"),
        (lambda m: m["encoder"].update(file=["x"]), "encoder.file"),
        (lambda m: m["files"].update({"encoder.onnx": 12}), "sha256"),
        (lambda m: m.update(files=["encoder.onnx"]), "'files'"),
        (lambda m: m.update(sample_rate="48000"), "sample_rate"),
        (lambda m: m.update(log_eps=float("nan")), "log_eps"),
        (lambda m: m["encoder"].update(states=["x"]), r"encoder\.states\[0\]"),
    ],
    ids=["huge-n_fft", "huge-rate", "huge-K", "huge-state", "file-not-a-name", "hash-not-str",
         "files-list", "rate-string", "nan-eps", "state-not-object"],
)
def test_absurd_manifest_values(bundle, edit, pattern):
    _edit_manifest(bundle, edit)
    msg = _refused(bundle, pattern)
    assert "manifest.json" in msg or ".onnx" in msg


def test_manifest_not_utf8_or_a_folder(bundle, tmp_path):
    (bundle / "manifest.json").write_bytes(b"\xff\xfe{\x00")
    _refused(bundle, r"manifest\.json: manifest is not valid JSON")
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").mkdir()
    _refused(bundle, r"manifest\.json: manifest is not a regular file")


def test_listed_file_is_a_folder(bundle):
    (bundle / "nb_table.npz").unlink()
    (bundle / "nb_table.npz").mkdir()
    _refused(bundle, r"nb_table\.npz: missing file")


# --------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("damage", ["truncated-onnx", "missing-onnx", "future-version",
                                    "wrong-hash"])
def test_process_with_a_bad_bundle_is_one_line_exit_2(bundle, tmp_path, capsys, damage):
    import soundfile as sf

    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(4800), 48000, subtype="PCM_16")
    want = {"truncated-onnx": "encoder.onnx", "missing-onnx": "decoder.onnx",
            "future-version": "manifest.json", "wrong-hash": "nb_table.npz"}[damage]
    if damage == "truncated-onnx":
        p = bundle / "encoder.onnx"
        p.write_bytes(p.read_bytes()[:200])
        _rehash(bundle)
    elif damage == "missing-onnx":
        (bundle / "decoder.onnx").unlink()
    elif damage == "future-version":
        _edit_manifest(bundle, lambda m: m.update(format_version=99))
    else:
        with open(bundle / "nb_table.npz", "ab") as f:
            f.write(b"\x00")
    out = tmp_path / "out.wav"
    rc = main(["process", str(src), str(out), "--bundle", str(bundle), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqblur process: error:"), err
    assert want in lines[0] and "Traceback" not in err
    assert not out.exists()
