"""The audio process keeps the CPUs' wake-up latency low while it runs (Linux PM QoS,
/dev/cpu_dma_latency): the request holds while its file stays open, and only then."""

from __future__ import annotations

import os

import pytest

from vqblur.engine.stage.realtime import CPU_DMA_LATENCY, cpu_wakeup_target, hold_cpu_wakeup


def test_the_hold_is_the_kernels_target_while_open(tmp_path):
    before = cpu_wakeup_target()
    fd, what = hold_cpu_wakeup(0)
    if fd < 0:
        pytest.skip(f"PM QoS not writable here: {what}")
    try:
        assert what == "0 us"
        assert cpu_wakeup_target() == 0
    finally:
        os.close(fd)
    assert cpu_wakeup_target() == before  # let go with the file


def test_no_permission_or_no_file_says_why(tmp_path):
    fd, what = hold_cpu_wakeup(0, path=str(tmp_path / "no-such-device"))
    assert fd == -1 and what.startswith("no (")
    assert cpu_wakeup_target(str(tmp_path / "no-such-device")) is None
    assert CPU_DMA_LATENCY == "/dev/cpu_dma_latency"
