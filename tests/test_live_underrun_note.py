"""After a live run with under-runs, ``vqblur live`` says why the engine's blocks were late, from
the worker's own counters (busy on the CPU, held off it, by the hypervisor), and which slack to
try; a clean run prints nothing more. Also through ``run_live`` with a runner whose worker
sleeps through a block now and then on the JACK dummy server."""

from __future__ import annotations

import io

import pytest

from vqblur.engine.stage.stats import LiveStats
from vqblur.engine.stage.status import underrun_note


def test_clean_run_has_no_note():
    assert underrun_note(LiveStats(callbacks=1000, host_block=128), 48000, 128) is None


def test_note_splits_the_late_blocks_and_offers_slack():
    st = LiveStats(callbacks=1000, host_block=128, underruns=7, slow_chunks=9, stalled_chunks=4,
                   machine_stalls=1)
    note = underrun_note(st, 48000, 128)
    assert "7 under-runs" in note and "9 took over one host period" in note
    assert "5 busy on the CPU" in note and "4 held off the CPU" in note and "1 by the hypervisor" in note
    assert "--prefill-blocks 2" in note and "2.67 ms more latency" in note


def test_note_with_two_blocks_offers_no_more_slack():
    st = LiveStats(callbacks=1000, host_block=128, underruns=2)
    note = underrun_note(st, 48000, 256)
    assert "--prefill-blocks" not in note and "started late" in note


@pytest.mark.jack
def test_run_live_prints_the_note(jack_server):
    from tests.test_live_stalls_jack import EveryNth
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.stage.status import run_live

    runner = LiveRunner(EveryNth("asleep"), samplerate=48000, blocksize=0, channels=1,
                        input_device="system", output_device="system", jack_client_name="vqnote")
    out = io.StringIO()
    assert run_live(runner, duration_s=1.5, out=out) == 0
    text = out.getvalue()
    st = runner.stats()
    assert st.underruns > 0, text  # 1.6 periods asleep every 50th block, one block of slack
    assert f"{st.underruns} under-runs" in text and "held off the CPU" in text
    assert "--prefill-blocks 2" in text
