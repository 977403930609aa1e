"""Stalled against slow: the worker tells a chunk it was held off the CPU for (the machine, a
sleeping thread) from one its processor spent on the CPU. The suite's live checks excuse
under-runs only for the first kind (``check_clean``), so the count must not take one for the other.

Of the stalled chunks, those the guest kernel never switched out (``machine_stalls``: the
hypervisor paused the virtual CPU, whose time the thread clock leaves out) are the only ones the
under-load test puts down to the machine; a chunk asleep or waiting for the GIL another thread
holds is stalled and never one of them."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from tests.test_live_jack import BLOCK, SR, make_signal, run_through_jack

pytestmark = pytest.mark.jack

EVERY = 50  # one long chunk in this many
LONG_S = 1.6 * BLOCK / SR  # 1.6 host periods


class GilHolder:
    """A thread that, when asked, holds the GIL for about ``LONG_S`` in one C call (a sort)."""

    def __init__(self) -> None:
        values = [random.random() for _ in range(1000)]
        t = time.perf_counter()
        sorted(values)
        per_item = (time.perf_counter() - t) / 1000
        self.values = [random.random() for _ in range(max(1000, int(LONG_S / per_item)))]
        self.ask, self.started = threading.Event(), threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.ask.wait()
            self.ask.clear()
            self.started.set()
            sorted(self.values)  # the GIL is not released inside

    def hold(self) -> None:
        """Returns once the thread has held the GIL for its sort (the caller waited for it)."""
        self.started.clear()
        self.ask.set()
        self.started.wait()  # releases the GIL; it comes back after the sort


class EveryNth:
    """Identity; every ``EVERY``-th block takes ``LONG_S``: asleep (``"asleep"``), on the CPU
    (``"on-cpu"``) or waiting for the GIL another thread holds (``"gil"``)."""

    latency_samples = 0

    def __init__(self, mode: str):
        self.mode = mode
        self.calls = 0
        self.gil = GilHolder() if mode == "gil" else None

    def process(self, x):
        self.calls += 1
        if self.calls % EVERY == 0:
            t = time.perf_counter()
            if self.mode == "on-cpu":
                while time.perf_counter() - t < LONG_S:
                    pass
            elif self.mode == "gil":
                self.gil.hold()
            else:
                time.sleep(LONG_S)
        return np.array(x, dtype=np.float32, copy=True)


@pytest.mark.parametrize("mode", ["asleep", "on-cpu", "gil"])
def test_stalled_chunks_are_the_ones_held_off_the_cpu(jack_server, tmp_path, mode):
    sig = make_signal(2.0, channels=1, seed=8)
    runner, stats, _, xruns = run_through_jack(EveryNth(mode), sig, blocksize=0, tmp_path=str(tmp_path),
                                               server=jack_server, prefill_blocks=2)
    long_chunks = runner.processor.calls // EVERY
    print(f"{mode}: {long_chunks} long chunks, {stats.slow_chunks} slow, {stats.stalled_chunks} "
          f"stalled over {stats.stall_periods} periods, {stats.machine_stalls} by the machine; "
          f"xruns {xruns}")
    assert long_chunks >= 20
    if mode == "on-cpu":  # busy on the CPU: slow, not stalled (bar the machine's own few)
        assert stats.slow_chunks >= 0.9 * long_chunks
        assert stats.stalled_chunks <= 0.2 * long_chunks, stats
    else:  # asleep or waiting: each long chunk stalled, the sleep over two periods (1.6 rounded up)
        assert stats.slow_chunks >= (0.9 if mode == "asleep" else 0.6) * long_chunks
        assert stats.stalled_chunks >= 0.9 * stats.slow_chunks, stats
        if mode == "asleep":
            assert stats.stall_periods >= 2 * stats.stalled_chunks, stats
    # the thread was switched out (or never held off): none of these is the machine's, bar its
    # own few (a paused virtual CPU during a chunk)
    assert stats.machine_stalls <= 0.1 * long_chunks, stats


def test_without_thread_rusage_no_block_is_the_machines(jack_server, tmp_path, monkeypatch):
    """Where the thread's context switches cannot be read (no ``RUSAGE_THREAD``: macOS), a
    stalled block is never put down to the hypervisor."""
    import vqblur.engine.stage.runner as runner_mod

    monkeypatch.setattr(runner_mod, "_RUSAGE_THREAD", None)
    sig = make_signal(1.0, channels=1, seed=9)
    runner, stats, _, _ = run_through_jack(EveryNth("asleep"), sig, blocksize=0, tmp_path=str(tmp_path),
                                           server=jack_server, prefill_blocks=2)
    assert stats.stalled_chunks >= 5, stats
    assert stats.machine_stalls == 0, stats
