"""``codec.decode_pair(blurred, clean)``: two decoder streams with their own states, equal to two
independent codecs; one decode while the codes and the states agree; one batch-2 run when the
decoder graph takes a batch (bundle format 2), two batch-1 runs when it does not (format 1)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import load_bundle
from vqblur.engine.codec import IdentityCodec, OnnxCodec

pytest.importorskip("torch")
pytest.importorskip("onnx")
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.testing import as_format1, make_nb_table, make_tiny_checkpoint  # noqa: E402


class Calls:
    """Counts the codec's decoder runs and their batch sizes (wraps its bound graphs)."""

    def __init__(self, codec: OnnxCodec):
        self.batches: list[int] = []
        for bound, B in [(b, 1) for b in codec._dec1] + ([(codec._dec2, 2)] if codec._dec2 else []):
            run = bound.run
            bound.run = lambda phase, run=run, B=B: (self.batches.append(B), run(phase))[1]


def _count(codec: OnnxCodec) -> Calls:
    return Calls(codec)




def _schedule(rows: int, K: int, n: int, seed: int = 0):
    """Columns of (blurred, clean): equal for a while, different, equal again."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        clean = rng.integers(0, K, rows).astype(np.int64)
        blurred = clean.copy()
        if 4 <= i < 9:
            blurred[rows // 3 : rows // 2] = rng.integers(0, K, rows // 2 - rows // 3)
        out.append((blurred, clean))
    return out


@pytest.fixture(scope="module", params=["format2", "format1"])
def shipped(request, tmp_path_factory):
    """A tiny exported model (causal conv states: finite memory) as bundle format 2 (batched
    decoder) and as format 1 (one stream per run)."""
    root = tmp_path_factory.mktemp("pair")
    ckpt = make_tiny_checkpoint(root / "run")
    nb = make_nb_table(root / "nb_table.npz", rows=20, K=32)
    b = export_bundle(ckpt, nb, root / "bundle")
    if request.param == "format1":
        as_format1(b)
    return load_bundle(b)


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    d = tmp_path_factory.mktemp("toys")
    return (load_bundle(make_toy_bundle(d / "fixed")),
            load_bundle(make_toy_bundle(d / "dynamic", dynamic_batch=True)))


def test_two_streams_equal_two_independent_codecs(shipped):
    """Bit-equal to two codecs, each decoding its stream; one batch-1 run per column while the
    streams agree, both streams otherwise (one batch-2 run, or two runs for format 1), one
    batch-1 run again once the states met."""
    pair, ref_b, ref_c = OnnxCodec(shipped), OnnxCodec(shipped), OnnxCodec(shipped)
    assert pair.batched == (shipped.format_version == 2)
    both = [2] if pair.batched else [1, 1]
    calls = _count(pair)
    cfg = pair.config
    per_column = []
    for blurred, clean in _schedule(cfg.rows, cfg.codebook_size, 20):
        n0 = len(calls.batches)
        lb, lc = pair.decode_pair(blurred, clean)
        per_column.append(calls.batches[n0:])
        assert lb.shape == lc.shape == (cfg.frames_per_column, cfg.model_bins)
        assert np.array_equal(lb, ref_b.decode(blurred))
        assert np.array_equal(lc, ref_c.decode(clean))
    assert per_column[:4] == [[1]] * 4  # identical streams: one decode
    assert per_column[4:9] == [both] * 5  # blurred != clean
    assert per_column[9] == both  # codes equal again, states not yet
    assert per_column[-1] == [1], per_column  # the states met again: back to one decode


def test_batch2_run_on_a_dynamic_batch_decoder(toys):
    fixed, dynamic = toys  # the toy decoder's state is an IIR: the streams never meet again
    a, b = OnnxCodec(fixed), OnnxCodec(dynamic)
    assert not a.batched and b.batched
    ref_b, ref_c = OnnxCodec(fixed), OnnxCodec(fixed)
    calls = _count(b)
    cfg = b.config
    for i, (blurred, clean) in enumerate(_schedule(cfg.rows, cfg.codebook_size, 14)):
        n0 = len(calls.batches)
        lb, lc = b.decode_pair(blurred, clean)
        fb, fc = a.decode_pair(blurred, clean)
        rb, rc = ref_b.decode(blurred), ref_c.decode(clean)
        assert np.array_equal(lb, rb) and np.array_equal(lc, rc) and np.array_equal(fb, rb)
        assert np.array_equal(fc, rc)
        # the states too (the toy decoder's output does not show them)
        for j in range(len(b._dec_bufs[0])):
            assert np.array_equal(b._dec_bufs[b._phase[0]][j][0], ref_b._dec_bufs[ref_b._phase[0]][j][0])
            assert np.array_equal(b._dec_bufs[b._phase[1]][j][1], ref_c._dec_bufs[ref_c._phase[0]][j][0])
        assert len(calls.batches) - n0 == 1  # always one run
        if 4 <= i < 9:
            assert calls.batches[-1] == 2  # both streams in one batch-2 run
    assert calls.batches[:4] == [1, 1, 1, 1]


def test_reset_and_fork_give_equal_zero_streams(shipped):
    c = OnnxCodec(shipped)
    cfg = c.config
    sched = _schedule(cfg.rows, cfg.codebook_size, 8)
    first = [tuple(np.copy(a) for a in c.decode_pair(b, k)) for b, k in sched]
    c.reset()
    # decode_pair returns views of the codec's output buffer (valid until the next decode)
    again = [tuple(np.copy(a) for a in c.decode_pair(b, k)) for b, k in sched]
    f = c.fork()
    forked = [tuple(np.copy(a) for a in f.decode_pair(b, k)) for b, k in sched]
    for (b1, c1), (b2, c2), (b3, c3) in zip(first, again, forked):
        assert np.array_equal(b1, b2) and np.array_equal(c1, c2)
        assert np.array_equal(b1, b3) and np.array_equal(c1, c3)


def test_identity_codec_pair():
    c = IdentityCodec()
    x = np.random.default_rng(0).standard_normal((2, 160))
    codes = c.encode(x)
    lb, lc = c.decode_pair(codes, codes)
    assert np.array_equal(lb, x) and np.array_equal(lc, x)
