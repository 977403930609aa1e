"""``OnnxCodec.decoder_streams(C)``: independent channels' decoder streams (each channel's b and
c of ``decode_pair``) decoded in one onnxruntime run per column.

Equality: each channel's results equal a codec of its own running ``decode_pair``, bit for bit.
onnxruntime's CPU kernels compute each row of a batch on its own (the same reduction order
whatever the batch), so a stream's result does not depend on its batch-mates; on the default
model batches 1..4 were compared bit-equal, and the tests below hold the codec to that (the
existing ``decode_pair`` batch-2 test does the same). The batch of each run is exactly the
streams that need decoding: ``C`` (every b) plus the channels whose c differs from their b."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.codec import DecoderStreams, OnnxCodec


def _count_runs(g: DecoderStreams) -> list[int]:
    """Wraps the group's bound runs: the list records each run's batch size."""
    batches: list[int] = []
    for i, bound in enumerate(g._runs):
        run = bound.run
        bound.run = lambda phase, run=run, B=g.channels + i: (batches.append(B), run(phase))[1]
    return batches


def _schedule(C: int, n: int, K: int, columns: int, seed: int = 0):
    """Per column and channel (blurred, clean): channel k's blurred codes leave its clean codes
    in windows of its own length (so the channels part and meet at different columns), and now
    and then the blurred column is the clean array itself (``b is c``)."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(columns):
        cols = []
        for k in range(C):
            clean = rng.integers(0, K, n).astype(np.int64)
            if (t // (9 + 5 * k)) % 2 == 1:
                blurred = clean.copy()
                blurred[2:7] = rng.integers(0, K, 5)
            else:
                blurred = clean if t % 3 == 0 else clean.copy()
            cols.append((blurred, clean))
        out.append(cols)
    return out


@pytest.fixture(scope="module")
def default():
    return load_bundle(default_bundle_path())


@pytest.mark.parametrize("C", [1, 2, 3])
def test_streams_equal_a_codec_per_channel(default, C):
    b = default
    refs = [OnnxCodec(b) for _ in range(C)]
    g = refs[0].fork().decoder_streams(C)
    assert isinstance(g, DecoderStreams) and g.channels == C
    batches = _count_runs(g)
    seen = set()
    for t, cols in enumerate(_schedule(C, b.n_codes, b.codebook_size, 120, seed=C)):
        n0 = len(batches)
        lb, lc = g.decode_pairs([c[0] for c in cols], [c[1] for c in cols])
        differ = 0
        for k, (blurred, clean) in enumerate(cols):
            rb, rc = refs[k].decode_pair(blurred, clean)
            assert np.array_equal(lb[k], rb) and np.array_equal(lc[k], rc), (t, k)
            # the group shares a channel's streams exactly when its own codec does
            assert (g._slot[k] < 0) == refs[k]._same, (t, k)
            differ += not (blurred is clean or np.array_equal(blurred, clean))
        assert len(batches) - n0 == 1  # one decoder run per column, whatever the channels do
        assert C <= batches[-1] <= 2 * C and batches[-1] >= C + differ
        seen.add(batches[-1])
    assert seen == set(range(C, 2 * C + 1)), seen  # every batch size was used, incl. C (all met)


def test_reset_gives_zero_streams(default):
    g = OnnxCodec(default).decoder_streams(2)
    sched = _schedule(2, default.n_codes, default.codebook_size, 30)

    def run():
        res = []
        for cols in sched:
            lb, lc = g.decode_pairs([c[0] for c in cols], [c[1] for c in cols])
            res.append([np.copy(a) for a in lb + lc])
        return res

    first = run()
    g.reset()
    assert g._nc == 0 and all(s < 0 for s in g._slot)
    for a, b in zip(first, run()):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_dynamic_batch_toy_and_the_unbatched_fallback(tmp_path):
    """The toy decoder (an IIR state: streams that part never meet again) with a dynamic batch
    gets a group; the fixed-batch toy (and so a format-1 bundle) gets None."""
    fixed = load_bundle(make_toy_bundle(tmp_path / "fixed"))
    dynamic = load_bundle(make_toy_bundle(tmp_path / "dynamic", dynamic_batch=True))
    assert OnnxCodec(fixed).decoder_streams(2) is None
    g = OnnxCodec(dynamic).decoder_streams(2)
    refs = [OnnxCodec(fixed), OnnxCodec(fixed)]
    for cols in _schedule(2, dynamic.n_codes, dynamic.codebook_size, 40):
        lb, lc = g.decode_pairs([c[0] for c in cols], [c[1] for c in cols])
        for k, (blurred, clean) in enumerate(cols):
            rb, rc = refs[k].decode_pair(blurred, clean)
            assert np.array_equal(lb[k], rb) and np.array_equal(lc[k], rc)
        for k in range(2):  # the states too (the toy's output does not show them)
            for j, a in enumerate(g._bufs[g._phase]):
                r = refs[k]
                assert np.array_equal(a[k], r._dec_bufs[r._phase[0]][j][0])
                if g._slot[k] >= 0:
                    assert np.array_equal(a[g._slot[k]], r._dec_bufs[r._phase[1]][j][1])


def test_decode_pairs_allocates_no_buffers(default):
    """Per column, parts and meetings included (slots claimed, released and moved), the peak
    of new memory stays below 4 kB: onnxruntime's own call bookkeeping (about 1.3 kB, as for a
    codec's ``decode_pair``), no array (a batch's output is 5 kB, the largest state row 15 kB,
    a bool temporary of it from ``np.array_equal`` 3.8 kB: the comparisons use scratch)."""
    g = OnnxCodec(default).decoder_streams(2)
    sched = _schedule(2, default.n_codes, default.codebook_size, 80)
    bl = [[c[0] for c in cols] for cols in sched]
    cl = [[c[1] for c in cols] for cols in sched]
    for i in range(5):
        g.decode_pairs(bl[i], cl[i])
    peaks = []
    tracemalloc.start()
    try:
        for b, c in zip(bl, cl):
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            g.decode_pairs(b, c)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    assert max(peaks) < 4096, max(peaks)
