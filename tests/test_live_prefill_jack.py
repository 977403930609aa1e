"""``prefill_blocks`` (``vqblur live --prefill-blocks N``): the worker gets N host blocks of slack
instead of one, and the live latency is the engine's + N blocks, as declared and as measured on
the JACK dummy server (JACK port to JACK port); output = the offline render at that offset. A
worker that stalls for more than one period but less than N now and then costs no under-run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_live_jack import (BLOCK, SR, check_against_offline, check_clean, make_signal,
                                  retry_once_after_machine_xruns, run_through_jack)

pytestmark = pytest.mark.jack


def test_two_prefill_blocks_add_one_block_of_latency(jack_server, tmp_path):
    from vqblur.engine.stage.runner import PassThrough

    sig = make_signal(2.0, channels=1, seed=5)

    def attempt(seen):
        runner, stats, rec, xruns = run_through_jack(PassThrough(), sig, blocksize=0, tmp_path=str(tmp_path),
                                                     server=jack_server, prefill_blocks=2)
        seen["xruns"], seen["stats"] = xruns, stats
        assert runner.prefill == 2 * BLOCK and runner.latency_samples == 2 * BLOCK
        lat = check_against_offline(runner, stats, rec, sig, PassThrough(), atol=0.0, xruns=xruns)
        assert lat == 2 * BLOCK
        check_clean(stats, xruns)

    retry_once_after_machine_xruns(attempt)


class StallingPassThrough:
    """Identity, but every 100th block takes 1.6 host periods (4.3 ms at 128 / 48 kHz)."""

    latency_samples = 0

    def __init__(self):
        self.calls = 0

    def process(self, x):
        import time

        self.calls += 1
        if self.calls % 100 == 0:
            time.sleep(1.6 * BLOCK / SR)
        return np.array(x, dtype=np.float32, copy=True)


@pytest.mark.parametrize("blocks", [1, 2])
def test_a_stall_longer_than_a_period_needs_the_second_block(jack_server, tmp_path, blocks):
    """With one block of slack a worker stalling 1.6 periods misses (nearly) every stall; with two
    it misses none beyond the machine's own."""
    sig = make_signal(3.0, channels=1, seed=6)
    runner, stats, rec, xruns = run_through_jack(StallingPassThrough(), sig, blocksize=0, tmp_path=str(tmp_path),
                                                 server=jack_server, prefill_blocks=blocks)
    stalls = runner.processor.calls // 100
    print(f"{blocks} block(s): {stats.underruns} under-runs for {stalls} stalls; xruns {xruns}")
    if blocks == 1:
        assert stats.underruns >= stalls // 2, (stats.underruns, stalls)
    else:
        assert stats.underruns <= 3 * xruns["total"] + 0.002 * stats.callbacks, (stats, xruns)
