"""`export_step_graphs(..., decoder_batch="dynamic")`: the decoder graph gets a dynamic batch
axis, the engine detects it and decodes its two streams (decode_pair) in one batch-2 run,
with the same results as the batch-1 graph of the same checkpoint run twice."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.engine.bundle import load_bundle  # noqa: E402
from vqblur.engine.codec import OnnxCodec  # noqa: E402
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.testing import make_nb_table, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    ckpt = make_tiny_checkpoint(root / "run")
    (root / "nb").mkdir()
    nb = make_nb_table(root / "nb" / "nb_table.npz", rows=20, K=32)
    fixed = export_bundle(ckpt, nb, root / "fixed")
    dynamic = export_bundle(ckpt, nb, root / "dynamic", decoder_batch="dynamic")
    return load_bundle(fixed), load_bundle(dynamic)


def test_dynamic_decoder_runs_both_streams_in_one_call(pair):
    fixed, dynamic = pair
    a, b = OnnxCodec(fixed), OnnxCodec(dynamic)
    assert not a._s.dec_batch2 and b._s.dec_batch2
    assert [i.shape[0] for i in b._s.dec.get_inputs()] == ["batch"] * len(b._s.dec.get_inputs())
    assert all(isinstance(i.shape[0], int) for i in b._s.enc.get_inputs())  # the encoder stays fixed
    runs = []
    run = b._s.dec.run
    b._s.dec = type("S", (), {"run": lambda self, n, f: runs.append(f["codes"].shape[0]) or run(n, f),
                              "get_inputs": lambda self: []})()
    rng = np.random.default_rng(0)
    for i in range(12):
        clean = rng.integers(0, 32, 20).astype(np.int64)
        blurred = clean.copy()
        if i >= 3:
            blurred[5:9] = rng.integers(0, 32, 4)
        lb, lc = b.decode_pair(blurred, clean)
        rb, rc = a.decode_pair(blurred, clean)
        np.testing.assert_allclose(lb, rb, atol=1e-4)
        np.testing.assert_allclose(lc, rc, atol=1e-4)
    assert runs == [1, 1, 1] + [2] * 9
