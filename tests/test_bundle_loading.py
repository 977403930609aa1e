"""The bundle reader refuses a bad bundle with a BundleError that names the file and the problem."""

import json
import shutil

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import (FORMAT_VERSION, Bundle, default_bundle_path, load_bundle,
                                  write_manifest)
from vqblur.common.errors import BundleError, UserError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("pristine") / "toy")


@pytest.fixture
def bundle(pristine, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(pristine, dst)
    return dst


def _edit_manifest(root, fn):
    m = json.loads((root / "manifest.json").read_text())
    fn(m)
    (root / "manifest.json").write_text(json.dumps(m))


def test_good_bundle_loads_with_typed_fields(bundle):
    b = load_bundle(bundle)
    assert isinstance(b, Bundle)
    assert (b.sample_rate, b.n_fft, b.hop, b.frames_per_column) == (48000, 320, 80, 2)
    assert (b.rows, b.codebook_size, b.model_bins, b.latency_samples) == (20, 256, 160, 399)
    assert b.encoder_path.is_file() and b.decoder_path.is_file() and b.nb_path.is_file()
    assert b.encoder_states[0].name_in == "enc_s0_in" and b.encoder_states[0].shape == (1, 20)
    assert load_bundle(bundle / "manifest.json").root == b.root


def test_truncated_file_is_refused(bundle):
    p = bundle / "decoder.onnx"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(BundleError, match=r"decoder\.onnx.*sha256"):
        load_bundle(bundle)


def test_altered_file_is_refused(bundle):
    p = bundle / "encoder.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"encoder\.onnx.*sha256 mismatch"):
        load_bundle(bundle)


def test_missing_file_is_refused(bundle):
    (bundle / "nb_table.npz").unlink()
    with pytest.raises(BundleError, match=r"nb_table\.npz: missing file"):
        load_bundle(bundle)


def test_missing_manifest_is_refused(bundle):
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"not a vqblur bundle \(no manifest\.json in .*\)"):
        load_bundle(bundle)


def test_malformed_manifest_is_refused(bundle):
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json: manifest is not valid JSON"):
        load_bundle(bundle)


def test_newer_format_version_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=rf"manifest\.json: format_version {FORMAT_VERSION + 1} is newer"):
        load_bundle(bundle)


def test_wrong_format_name_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m.update(format="something-else"))
    with pytest.raises(BundleError, match=r"manifest\.json: 'format'"):
        load_bundle(bundle)


@pytest.mark.parametrize("key", ["hop", "rows", "files", "latency_samples", "encoder"])
def test_missing_key_is_refused(bundle, key):
    _edit_manifest(bundle, lambda m: m.pop(key))
    with pytest.raises(BundleError, match=rf"manifest\.json: missing key\(s\): {key}"):
        load_bundle(bundle)


def test_inconsistent_latency_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m.update(latency_samples=100))
    with pytest.raises(BundleError, match=r"latency_samples"):
        load_bundle(bundle)


def test_nb_table_shape_mismatch_is_refused(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    with np.load(bundle / "nb_table.npz") as z:
        d = dict(z)
    d["log_row"] = d["log_row"][:10]
    np.savez(bundle / "nb_table.npz", **d)
    write_manifest(bundle, m)  # hashes are right again: only the shape is wrong
    with pytest.raises(BundleError, match=r"nb_table\.npz: 'log_row' has shape"):
        load_bundle(bundle)


def test_graph_names_checked_when_sessions_open(bundle):
    from vqblur.engine.codec import OnnxCodec

    _edit_manifest(bundle, lambda m: m["encoder"]["states"][0].update(name_in="other_in"))
    b = load_bundle(bundle)
    with pytest.raises(BundleError, match=r"encoder\.onnx: graph inputs"):
        OnnxCodec(b)


def test_path_escaping_the_bundle_is_refused(bundle):
    _edit_manifest(bundle, lambda m: m["files"].update({"../evil": "0" * 64}))
    with pytest.raises(BundleError, match="inside the bundle"):
        load_bundle(bundle)


def test_not_a_folder(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nope")
    assert issubclass(BundleError, UserError)


def test_default_bundle_path_is_clear_when_missing_or_loads():
    try:
        p = default_bundle_path()
    except BundleError as exc:
        assert "default_bundle" in str(exc) and "--bundle" in str(exc)
    else:
        assert (p / "manifest.json").is_file()
