"""`vqblur bench` tells guarantees (held by the tests on every machine: a miss is a bug) from
goals (aims, machine-dependent or not yet met); its --help says the timing knobs' defaults once
and names the folder it renders test clips into."""

import argparse

from vqblur.measure.targets import GUARANTEES, KINDS_NOTE, TARGETS, check, kind, missed, missed_summary


def test_every_target_has_a_kind_and_guarantees_name_their_test():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert set(GUARANTEES) <= set(TARGETS)
    for name, test in GUARANTEES.items():
        assert (root / test).is_file(), (name, test)
        assert kind(name) == "guarantee"
    assert kind("rtf_1_thread") == "goal" and kind("lsd_db[real]") == "goal"
    assert check("latency_ms", 8.3)["kind"] == "guarantee" and check("sc_db", -22.0)["kind"] == "goal"


def test_summary_counts_each_kind():
    t = {"latency_ms": check("latency_ms", 8.3), "bundle_mb": check("bundle_mb", 25.0),
         "rtf_1_thread": check("rtf_1_thread", 0.17), "lsd_db[real]": check("lsd_db", 1.2, "real"),
         "sine_440_db": check("sine_440_db", None)}
    assert missed_summary(t) == "2 of 5: guarantees 1 of 2, goals 1 of 3"
    assert missed(t, "guarantee") == ["bundle_mb 25 (target <= 20)"]
    assert missed(t, "goal") == ["rtf_1_thread 0.17 (target <= 0.05)"]
    assert missed(t) == missed(t, "guarantee") + missed(t, "goal")
    ok = {"latency_ms": check("latency_ms", 8.3)}
    assert missed_summary(ok) == "none of 1: guarantees 0 of 1, goals 0 of 0"
    assert "guarantee" in KINDS_NOTE and "goal" in KINDS_NOTE


def _bench_help() -> str:
    from vqblur.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices["bench"].format_help()


def test_bench_help_says_the_knob_defaults_once_and_where_it_writes(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = " ".join(_bench_help().split())
    assert text.count("Quality is measured at detail 1 and at detail 0 either way") == 1
    assert text.count("zone size 0.3") == 1
    assert "~/.cache/vqblur/data/bench-eval" in text and "VQBLUR_DATA" in text
    assert "guarantee" in text and "goal" in text
