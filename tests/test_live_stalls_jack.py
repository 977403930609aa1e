"""Stalled against slow: the worker tells a chunk it was held off the CPU for (the machine, a
sleeping thread) from one its processor spent on the CPU. The suite's live checks excuse
under-runs only for the first kind (``check_clean``), so the count must not take one for the other."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.test_live_jack import BLOCK, SR, make_signal, run_through_jack

pytestmark = pytest.mark.jack

EVERY = 50  # one long chunk in this many
LONG_S = 1.6 * BLOCK / SR  # 1.6 host periods


class EveryNth:
    """Identity; every ``EVERY``-th block takes ``LONG_S``, asleep (``spin=False``) or on the CPU."""

    latency_samples = 0

    def __init__(self, spin: bool):
        self.spin = spin
        self.calls = 0

    def process(self, x):
        self.calls += 1
        if self.calls % EVERY == 0:
            t = time.perf_counter()
            if self.spin:
                while time.perf_counter() - t < LONG_S:
                    pass
            else:
                time.sleep(LONG_S)
        return np.array(x, dtype=np.float32, copy=True)


@pytest.mark.parametrize("spin", [False, True], ids=["asleep", "on-cpu"])
def test_stalled_chunks_are_the_ones_held_off_the_cpu(jack_server, tmp_path, spin):
    sig = make_signal(2.0, channels=1, seed=8)
    runner, stats, _, xruns = run_through_jack(EveryNth(spin), sig, blocksize=0, tmp_path=str(tmp_path),
                                               server=jack_server, prefill_blocks=2)
    long_chunks = runner.processor.calls // EVERY
    print(f"spin={spin}: {long_chunks} long chunks, {stats.slow_chunks} slow, {stats.stalled_chunks} "
          f"stalled over {stats.stall_periods} periods; xruns {xruns}")
    assert long_chunks >= 20
    assert stats.slow_chunks >= 0.9 * long_chunks
    if spin:  # busy on the CPU: slow, not stalled (bar the machine's own few)
        assert stats.stalled_chunks <= 0.2 * long_chunks, stats
    else:  # asleep: each long chunk stalled, over two periods (1.6 rounded up)
        assert stats.stalled_chunks >= 0.9 * long_chunks, stats
        assert stats.stall_periods >= 2 * stats.stalled_chunks, stats
