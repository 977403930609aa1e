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


@pytest.mark.jack
@pytest.mark.parametrize("hold", [True, False], ids=["held", "cpu-idle"])
def test_the_live_runner_holds_it_while_its_stream_runs(jack_server, tmp_path, hold):
    """Every stream the runner opens (the live stage's, and any in-process one) holds it from
    start to stop, unless asked to let the CPUs sleep."""
    from tests.toy_bundle import make_toy_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine
    from vqblur.engine.stage.runner import LiveRunner

    fd, what = hold_cpu_wakeup(0)
    if fd < 0:
        pytest.skip(f"PM QoS not writable here: {what}")
    os.close(fd)
    before = cpu_wakeup_target()
    eng = make_engine(make_toy_bundle(tmp_path / "toy"), sample_rate=48000,
                      params=Params(zone_size=0.0))
    runner = LiveRunner(eng, samplerate=48000, channels=1, input_device="system",
                        output_device="system", jack_client_name=f"vqwake-{os.getpid()}-{hold}",
                        hold_cpu_wakeup=hold)
    assert cpu_wakeup_target() == before  # not before the stream starts
    runner.start()
    try:
        assert runner.active
        assert (runner.cpu_wakeup_held == "0 us") == hold, runner.cpu_wakeup_held
        assert (cpu_wakeup_target() == 0) == (hold or before == 0)
    finally:
        runner.stop()
    assert cpu_wakeup_target() == before  # let go when it stops
