"""SPSC ring buffers of the live path: order, wrap-around, absolute positions, skipping."""

from __future__ import annotations

import threading
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vqblur.engine.stage.ring import Ring


def test_fifo_order_and_wraparound():
    r = Ring(8, 2)
    src = np.arange(40, dtype=np.float32).reshape(20, 2)
    out = np.zeros((20, 2), np.float32)
    assert r.write(src[:5]) == 0
    assert r.read(out[:3]) == 3
    assert r.write(src[5:11]) == 0  # wraps: slots 5..7 then 0..2
    assert r.available() == 8 and r.write_space() == 0
    assert r.read(out[3:11]) == 8
    np.testing.assert_array_equal(out[:11], src[:11])
    assert r.read_pos == r.write_pos == 11


def test_full_ring_drops_the_tail_without_overwrite():
    r = Ring(4, 1)
    assert r.write(np.ones(6, np.float32)) == 2  # 2 dropped
    assert r.available() == 4


def test_overwrite_keeps_newest_and_is_detected():
    r = Ring(4, 1)
    r.write(np.arange(3, dtype=np.float32), overwrite=True)
    r.write(np.arange(3, 6, dtype=np.float32), overwrite=True)
    assert r.overrun_since(0) and not r.overrun_since(2)
    out = np.zeros((4, 1), np.float32)
    assert r.read_at(2, out)
    np.testing.assert_array_equal(out[:, 0], [2, 3, 4, 5])
    assert not r.read_at(1, out)  # overwritten
    assert not np.any(out)


def test_read_at_before_start_is_silence():
    r = Ring(16, 1)
    r.write(np.arange(1, 9, dtype=np.float32))
    out = np.zeros((6, 1), np.float32)
    assert r.read_at(-3, out)
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 1, 2, 3])
    assert not r.read_at(5, out)  # 5..10: not all written yet


def test_consumer_skip_ahead_drops_late_frames_and_keeps_alignment():
    """The live callback skips positions the worker has not delivered; the worker's late
    frames for those positions are dropped, the following ones land at their own positions."""
    r = Ring(32, 1)
    r.advance_read(10)  # consumer played something else for positions 0..9
    data = np.arange(16, dtype=np.float32)  # producer's frames for positions 0..15
    assert r.write(data) == 10
    assert r.write_pos == 16
    out = np.zeros((6, 1), np.float32)
    assert r.read(out) == 6
    np.testing.assert_array_equal(out[:, 0], data[10:])
    r.advance_read(20)
    assert r.write(np.zeros(5, np.float32)) == 5 and r.write_pos == 21 and r.available() == 0


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(1, 64), ch=st.integers(1, 3),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 80)), max_size=60))
def test_matches_a_reference_queue(cap, ch, ops):
    r = Ring(cap, ch)
    ref: list[np.ndarray] = []
    counter = 0
    for is_write, n in ops:
        if is_write:
            data = (counter + np.arange(n * ch, dtype=np.float32)).reshape(n, ch)
            counter += n * ch
            dropped = r.write(data)
            kept = n - dropped
            ref.extend(data[:kept])
        else:
            out = np.zeros((n, ch), np.float32)
            got = r.read(out)
            assert got == min(n, len(ref))
            if got:
                np.testing.assert_array_equal(out[:got], np.array(ref[:got]))
            del ref[:got]
        assert r.available() == len(ref) <= cap


def test_two_threads_stream_exactly():
    """One producer thread, one consumer thread, no lock: every frame arrives, in order."""
    r = Ring(256, 1)
    total = 50_000
    got = np.zeros(total, np.float32)

    def produce():
        pos = 0
        rng = np.random.default_rng(0)
        while pos < total:
            n = min(int(rng.integers(1, 97)), total - pos, r.write_space())
            if n <= 0:
                time.sleep(0)
                continue
            assert r.write(np.arange(pos, pos + n, dtype=np.float32)) == 0
            pos += n

    t = threading.Thread(target=produce)
    t.start()
    pos = 0
    buf = np.zeros((128, 1), np.float32)
    while pos < total:
        n = r.read(buf[: min(128, total - pos)])
        if n == 0:
            time.sleep(0)
        got[pos:pos + n] = buf[:n, 0]
        pos += n
    t.join()
    np.testing.assert_array_equal(got, np.arange(total, dtype=np.float32))
