"""Bundle format 2: the exported decoder graph has a dynamic batch axis; the engine decodes its
two streams (decode_pair) in one batch-2 run, with the same results as two codecs run one
stream each; format-1 bundles (made before codec v2) still load and run one stream at a time."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.engine.bundle import load_bundle  # noqa: E402
from vqblur.engine.codec import OnnxCodec  # noqa: E402
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.testing import as_format1, make_nb_table, make_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    ckpt = make_tiny_checkpoint(root / "run")
    (root / "nb").mkdir()
    nb = make_nb_table(root / "nb" / "nb_table.npz", rows=20, K=32)
    v2 = export_bundle(ckpt, nb, root / "v2")
    v1 = as_format1(export_bundle(ckpt, nb, root / "v1"))
    return load_bundle(v1), load_bundle(v2)


def test_format2_decoder_runs_both_streams_in_one_call(pair):
    v1, v2 = pair
    assert (v1.format_version, v2.format_version) == (1, 2)
    a, b = OnnxCodec(v1), OnnxCodec(v2)
    assert not a.batched and b.batched
    assert [i.shape[0] for i in b._s.dec.get_inputs()] == ["batch"] * len(b._s.dec.get_inputs())
    assert all(isinstance(i.shape[0], int) for i in b._s.enc.get_inputs())  # the encoder stays fixed
    runs: list[int] = []
    for bound, B in [(x, 1) for x in b._dec1] + [(b._dec2, 2)]:
        run = bound.run
        bound.run = lambda phase, run=run, B=B: (runs.append(B), run(phase))[1]
    rng = np.random.default_rng(0)
    for i in range(12):
        clean = rng.integers(0, 32, 20).astype(np.int64)
        blurred = clean.copy()
        if i >= 3:
            blurred[5:9] = rng.integers(0, 32, 4)
        lb, lc = b.decode_pair(blurred, clean)
        rb, rc = a.decode_pair(blurred, clean)
        np.testing.assert_allclose(lb, rb, atol=1e-5)
        np.testing.assert_allclose(lc, rc, atol=1e-5)
    assert runs == [1, 1, 1] + [2] * 9


def test_format1_manifest_has_no_v2_keys_and_one_code_per_row(pair):
    v1, _ = pair
    assert v1.levels == 1 and v1.rows_macro == 0 and v1.n_codes == v1.rows
    assert "levels" not in v1.manifest and v1.nb_macro_path is None
    c = OnnxCodec(v1)
    codes = c.encode(np.full((v1.frames_per_column, v1.model_bins), -3.0, np.float32))
    assert codes.shape == (v1.rows,)
