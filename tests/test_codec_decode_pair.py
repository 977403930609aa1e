"""``codec.decode_pair(blurred, clean)``: two decoder streams with their own states, equal to two
independent codecs; one decode while the codes and the states agree; one batch-2 run when the
decoder graph has a dynamic batch axis (toy bundle), two batch-1 runs when it does not (the
shipped bundle)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.codec import IdentityCodec, OnnxCodec


class CountingSession:
    def __init__(self, sess):
        self.sess = sess
        self.batches: list[int] = []

    def run(self, names, feed):
        self.batches.append(int(feed["codes"].shape[0]))
        return self.sess.run(names, feed)

    def __getattr__(self, name):
        return getattr(self.sess, name)


def _count(codec: OnnxCodec) -> CountingSession:
    c = CountingSession(codec._s.dec)
    codec._s.dec = c
    return c


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


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(default_bundle_path())


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    d = tmp_path_factory.mktemp("toys")
    return (load_bundle(make_toy_bundle(d / "fixed")),
            load_bundle(make_toy_bundle(d / "dynamic", dynamic_batch=True)))


def test_two_streams_equal_two_independent_codecs_shipped(shipped):
    """Shipped bundle (batch fixed at 1): bit-equal to two codecs, each decoding its stream;
    one run per column while the streams agree, two otherwise, one again once the states met."""
    pair, ref_b, ref_c = OnnxCodec(shipped), OnnxCodec(shipped), OnnxCodec(shipped)
    assert not pair._s.dec_batch2
    calls = _count(pair)
    cfg = pair.config
    per_column = []
    for blurred, clean in _schedule(cfg.rows, cfg.codebook_size, 20):
        n0 = len(calls.batches)
        lb, lc = pair.decode_pair(blurred, clean)
        per_column.append(len(calls.batches) - n0)
        assert lb.shape == lc.shape == (cfg.frames_per_column, cfg.model_bins)
        assert np.array_equal(lb, ref_b.decode(blurred))
        assert np.array_equal(lc, ref_c.decode(clean))
    assert per_column[:4] == [1, 1, 1, 1]  # identical streams: one decode
    assert per_column[4:9] == [2] * 5  # blurred != clean
    assert per_column[9] == 2  # codes equal again, states not yet
    assert per_column[-1] == 1, per_column  # the states met again: back to one decode
    assert set(calls.batches) == {1}


def test_batch2_run_on_a_dynamic_batch_decoder(toys):
    fixed, dynamic = toys
    a, b = OnnxCodec(fixed), OnnxCodec(dynamic)
    assert not a._s.dec_batch2 and b._s.dec_batch2
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
        for name_in, _ in b._dec_states:
            assert np.array_equal(b._dec_feed[name_in], ref_b._dec_feed[name_in])
            assert np.array_equal(b._dec_feed_c[name_in], ref_c._dec_feed[name_in])
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
    again = [c.decode_pair(b, k) for b, k in sched]
    f = c.fork()
    forked = [f.decode_pair(b, k) for b, k in sched]
    for (b1, c1), (b2, c2), (b3, c3) in zip(first, again, forked):
        assert np.array_equal(b1, b2) and np.array_equal(c1, c2)
        assert np.array_equal(b1, b3) and np.array_equal(c1, c3)


def test_identity_codec_pair():
    c = IdentityCodec()
    x = np.random.default_rng(0).standard_normal((2, 160))
    codes = c.encode(x)
    lb, lc = c.decode_pair(codes, codes)
    assert np.array_equal(lb, x) and np.array_equal(lc, x)
