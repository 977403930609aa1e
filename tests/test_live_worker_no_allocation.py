"""The live worker's loop allocates no buffers, and the shared block between the two processes of
``vqblur live`` carries the counters and the knobs.

The audio callback and the worker are driven by hand here (``LiveRunner._callback`` and
``LiveRunner._drain``, no audio device): two hundred blocks, with the knobs read once per block
from the shared block (as the audio process does) and the counters published to it, allocate
less than 4 kB at their peak: numpy's views, no buffer (the blocks are 2048 frames of 2 channels,
16 kB, so a copy of one would show)."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np

from vqblur.engine import knobs as _knobs
from vqblur.engine.stage.ring import Ring
from vqblur.engine.stage.runner import LiveRunner, ring_capacity
from vqblur.engine.stage.share import SharedKnobs, StageShare

SR, B = 48000, 2048


class InPlace:
    """An identity processor that returns its input (no copy): only the runner allocates."""

    latency_samples = 0

    def __init__(self):
        self.params = {}

    def process(self, x):
        return x

    def set_params(self, **kw):
        self.params = kw


def _runner(share=None, knobs=None, channels=1):
    cap = ring_capacity(SR)
    rings = {}
    if share is not None:
        rings = dict(in_ring=Ring(cap, channels, buffer=share.in_buf),
                     out_ring=Ring(cap, channels, buffer=share.out_buf))
    r = LiveRunner(InPlace(), samplerate=SR, channels=channels, knobs=knobs, share=share, **rings)
    return r


def _prime(r):
    """What the worker does before its loop, once the first callback has set the block size."""
    r.prefill = B
    r.counters.host_block = B
    r._running = True
    r._slow_chunk_s = B / SR
    r._next_in = 0
    r.out_ring.set_write_pos(B)
    r._set_params = r.processor.set_params
    r._last_knobs = {}
    r._win_t0, r._win_busy = 0.0, 0.0


def _blocks(r, share, n, indata, outdata):
    for _ in range(n):
        r._callback(indata, outdata, B, None, 0)
        r._drain()
        if share is not None:
            share.publish(r)


def test_worker_loop_and_publication_allocate_no_buffers():
    share = StageShare.create(os.getpid(), _knobs.NAMES, ring_capacity(SR), 2)
    try:
        reader = SharedKnobs(share, {"zone_size": 0.0, "mix": 1.0})
        r = _runner(share, reader.read, channels=2)
        _prime(r)
        rng = np.random.default_rng(0)
        indata = (0.1 * rng.standard_normal((B, 2))).astype(np.float32)
        outdata = np.zeros((B, 2), np.float32)
        share.set_knobs({"zone_size": 0.25})
        _blocks(r, share, 20, indata, outdata)  # warm: the views, the first knob snapshot
        assert r.processor.params["zone_size"] == 0.25
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            _blocks(r, share, 200, indata, outdata)
            peak = tracemalloc.get_traced_memory()[1] - base
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        print(f"peak {peak} bytes, grown {grown} bytes over 200 blocks")
        assert r.underruns == 0 and r.counters.worker_chunks == 220, r.stats()
        assert np.array_equal(outdata, indata)  # the block of the callback before (identity)
        assert peak < 4096, peak
        assert grown < 1024, grown
        # the published counters are the runner's
        c = share.counters()
        assert c.callbacks == r.callbacks == 220 and c.worker_chunks == 220
        assert c.frames == r.frames and c.host_block == B
        assert share.applied_knobs()["zone_size"] == 0.25
    finally:
        share.close()


_READER = r"""
import json, os, sys
from vqblur.engine.stage.share import SharedKnobs, StageShare
other = StageShare.attach_to_pid(int(sys.argv[1]))  # what the audio process (or a monitor) does
reader = SharedKnobs(other, {"zone_size": 0.0, "mix": 1.0})
print(json.dumps({"capacity": other.capacity, "channels": other.channels, "knobs": reader.read(),
                  "underruns": other.counters().underruns}))
other["heartbeat"] = 12.5
other.close()
"""


def test_knobs_and_counters_through_the_shared_block():
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    share = StageShare.create(os.getpid(), _knobs.NAMES, ring_capacity(SR), 2)
    try:
        def other():
            r = subprocess.run([sys.executable, "-c", _READER, str(os.getpid())], cwd=root,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)

        got = other()
        assert got["capacity"] == share.capacity and got["channels"] == 2
        assert got["knobs"] == {"zone_size": 0.0, "mix": 1.0} and got["underruns"] == 0
        share.set_knobs({"zone_size": 0.5, "centre": 0.2})
        share["underruns"] = 7
        got = other()
        assert got["knobs"] == {"zone_size": 0.5, "mix": 1.0, "centre": 0.2} and got["underruns"] == 7
        assert share["heartbeat"] == 12.5  # and the other side's writes come back
        # a write in progress (odd sequence number) is not taken: the previous values stay
        reader = SharedKnobs(share, {"mix": 1.0})
        assert reader.read()["zone_size"] == 0.5
        share["knob_seq"] = share["knob_seq"] + 1
        share.values[share._index["knob:mix"]] = 0.0
        assert reader.read()["mix"] == 1.0
        share["knob_seq"] = share["knob_seq"] + 1
        assert reader.read()["mix"] == 0.0
    finally:
        share.close()
