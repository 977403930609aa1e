"""The bench's building blocks, without running a bench: schedule, delay, energy, int8 lookup."""

from __future__ import annotations

import numpy as np
import pytest

from vqblur.measure.compute import simulate_schedule
from vqblur.measure.cost import training_cost
from vqblur.common.energy import EnergyMeter, co2e_grams
from vqblur.measure.latency import excitation, measure_delay
from vqblur.measure.run import find_int8_sibling


def test_schedule_no_miss_when_fast():
    assert simulate_schedule(np.full(100, 0.5e-3), 1e-3)["deadline_misses"] == 0


def test_schedule_queueing_counts():
    # one block takes 3.5 block durations: it misses, and so do the two queued behind it
    d = np.full(10, 0.1)
    d[3] = 3.5
    s = simulate_schedule(d, 1.0)
    assert s["deadline_misses"] == 3
    assert s["worst_slack_ms"] < 0


def test_schedule_exact_deadline_is_not_a_miss():
    assert simulate_schedule(np.full(5, 1.0), 1.0)["deadline_misses"] == 0


@pytest.mark.parametrize("kind", ["noise", "tone", "harmonic"])
def test_measure_delay_pure_delay(kind):
    rng = np.random.default_rng(1)
    x = excitation(kind, 48000, 12000, rng).astype(np.float64)
    y = np.concatenate([np.zeros(399), x])[: len(x) + 600]
    assert measure_delay(x, y, 2400) == 399


def test_energy_estimate_uses_cpu_time_and_watts():
    m = EnergyMeter(watts_per_core=7.0, force_estimate=True)
    s = 0.0
    for i in range(200000):
        s += i
    r = m.read()
    assert r.method == "estimated" and "7 W" in r.source
    assert r.joules == pytest.approx(7.0 * r.cpu_seconds)
    assert r.joules > 0


def test_co2e():
    assert co2e_grams(3.6e6) == pytest.approx(400.0)
    assert co2e_grams(3.6e6, 100.0) == pytest.approx(100.0)


def test_training_cost_from_manifest():
    m = {"training": {"metrics": {"wall_seconds": 3600.0, "energy_j": 7.2e6, "energy_method": "estimated"}}}
    t = training_cost(m)
    assert t["recorded"] and t["co2e_g"] == pytest.approx(800.0)
    assert training_cost({})["recorded"] is False


def test_int8_sibling(tmp_path):
    a = tmp_path / "bundle"
    a.mkdir()
    assert find_int8_sibling(a) is None
    s = tmp_path / "bundle_int8"
    s.mkdir()
    (s / "manifest.json").write_text("{}")
    assert find_int8_sibling(a) == s


def test_training_cost_from_export_summary():
    m = {"training": {"metrics": {"summary": {"wall_seconds": 10.0, "energy_j": 3.6e6,
                                              "energy_method": "measured", "steps": 5}}}}
    t = training_cost(m)
    assert t["wall_seconds"] == 10.0 and t["energy_method"] == "measured" and t["steps"] == 5
    assert t["co2e_g"] == pytest.approx(400.0)


def test_nb_metrics_from_export():
    from vqblur.measure.nb import manifest_nb_metrics

    ev = {"n_cells": 10, "models": {"unigram": {"nll_nats": 5.0}, "full": {"nll_nats": 3.0}}}
    assert manifest_nb_metrics({"nb": {"file": "nb_table.npz", "evaluation": ev}}) == ev
    assert manifest_nb_metrics({"nb": {"file": "nb_table.npz"}}) is None


def test_peak_rss_is_the_childs_own(tmp_path):
    """A big parent must not inflate the child's figure (ru_maxrss is inherited on Linux)."""
    from tests.toy_bundle import make_toy_bundle
    from vqblur.measure.cost import peak_rss

    root = make_toy_bundle(tmp_path / "toy")
    big = np.ones(40_000_000)  # 320 MB in this process
    big[::4096] = 2.0
    r = peak_rss(root, 0.5)
    assert r["torch_imported"] is False
    assert r["runtime_rss_mb"] <= r["loaded_rss_mb"] <= r["peak_rss_mb"] < 300
    del big


def test_cli_user_errors(tmp_path, capsys):
    from vqblur.cli import main

    assert main(["bench", "--bundle", str(tmp_path / "nope")]) == 2
    assert "bundle folder not found" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    assert main(["bench", "--bundle", str(tmp_path / "b"), "--audio", str(tmp_path / "nope")]) == 2
    assert "--audio must be a folder" in capsys.readouterr().err
    assert main(["report", "--bench", str(tmp_path / "nope.json")]) == 2
    assert "bench JSON not found" in capsys.readouterr().err


def test_nb_fit_splits_shapes():
    from vqblur.measure.nb import nb_fit_splits

    ev = {"n_cells": 3, "models": {"unigram": {"nll_nats": 5.0}, "full": {"nll_nats": 3.0}}}
    assert nb_fit_splits(ev) == {"eval": ev}
    summary = {"seconds": {"fit": 1.0}, "evaluation": {"valid": ev, "test": ev}}
    assert set(nb_fit_splits(summary)) == {"valid", "test"}
    assert nb_fit_splits(None) == {} and nb_fit_splits({"x": 1}) == {}
    t = training_cost({"nb": {"evaluation": {"seconds": {"encode": 2.0, "fit": 1.0}}}})
    assert t["nb_fit_seconds"] == 3.0


def test_interleaved_rtf_runs_bundles_in_turn(tmp_path, monkeypatch):
    """Several bundles stream the timing signal in turn, slice by slice (A B, B A, A B, ...: a
    drift of the machine's speed then favours neither), compared by per-slice ratios."""
    import vqblur.measure.inturn as inturn
    import vqblur.measure.run as run
    from tests.toy_bundle import make_toy_bundle

    a = make_toy_bundle(tmp_path / "a")
    b = make_toy_bundle(tmp_path / "b")
    order: list[str] = []
    real = inturn.run_blocks

    def spy(eng, x, block):
        order.append(eng.codecs[0].bundle.root.name)
        return real(eng, x, block)

    monkeypatch.setattr(inturn, "run_blocks", spy)
    o = run.BenchOptions(bundles=[a, b], quick=True, seconds=0.5, sets=[])
    r = run.interleaved_rtf([a, b], o, [])
    assert r["rounds"] == 6 and r["names"] == ["a", "b"] and r["slices"] == 6 * 4
    timed = order[2:]  # after the two warm-ups
    assert timed == ["a", "b", "b", "a"] * (r["slices"] // 2)
    assert r["ratio_to_first"][0] == 1.0 and r["ratio_to_first"][1] > 0
    assert len(r["rtf_runs"][0]) == 6 and all(v > 0 for runs in r["rtf_runs"] for v in runs)


def test_host_stalls_counts_gaps_by_limit():
    from vqblur.measure.compute import host_stalls

    r = host_stalls(0.2)
    counts = list(r["gaps_longer_than_ms"].values())
    assert list(r["gaps_longer_than_ms"]) == ["0.5", "1", "1.33", "2.67"]
    assert counts == sorted(counts, reverse=True)  # a longer limit never counts more gaps
    assert 0.0 <= r["stalled_fraction"] < 1.0 and r["longest_ms"] >= 0.0
    assert (r["longest_ms"] > 0.5) == (counts[0] > 0)


def test_blur_cost_rounds_time_the_smear_too(tmp_path):
    """The bench's blur-cost rounds also time mono with the smear knob at 1 (the others have it
    off), round-robin with them, as a ratio to mono."""
    import vqblur.measure.run as run
    from tests.toy_bundle import make_toy_bundle

    a = make_toy_bundle(tmp_path / "a")
    o = run.BenchOptions(bundles=[a], quick=True, seconds=0.5, sets=[])
    r = run.stereo_rtf(a, o, [])
    assert set(r["rtf"]) == {"mono", "mono_blur_v1", "linked", "independent", "mono_smear"}
    assert r["rtf"]["mono_smear"] > 0 and r["ratio_to_mono"]["mono"] == 1.0
    # the modes in turn, slice by slice (a slice is at most 10 host blocks of 512)
    assert r["slices"] >= 2 and 0 < r["slice_s"] <= 5120 / 48000 + 1e-9
    # the column step per mode too (the engine's own timer): what the blur's cost target reads
    assert set(r["column_us"]) == set(r["rtf"]) and r["column_ratio_to_mono"]["mono"] == 1.0
    assert all(v > 0 for v in r["column_us"].values())
    # two channels' columns cost more than one
    assert r["column_us"]["independent"] > r["column_us"]["mono"]


def test_blur_cost_modes_take_turns_slice_by_slice(tmp_path, monkeypatch):
    """The cost modes stream the signal in turn, one short slice each, forwards then backwards,
    so a drift of the machine's speed hits every mode alike (not one run per mode)."""
    import vqblur.measure.inturn as inturn
    import vqblur.measure.run as run
    from tests.toy_bundle import make_toy_bundle

    calls = []
    real = inturn.run_blocks

    def spy(eng, x, block):
        calls.append((id(eng), len(x)))
        return real(eng, x, block)

    monkeypatch.setattr(inturn, "run_blocks", spy)
    a = make_toy_bundle(tmp_path / "a")
    o = run.BenchOptions(bundles=[a], quick=True, seconds=0.5, sets=[])
    r = run.stereo_rtf(a, o, [])
    timed = calls[5:]  # after the five engines' warm-ups
    assert len(timed) == 5 * r["slices"]
    assert all(n == round(r["slice_s"] * 48000) for _, n in timed)
    turns = [[e for e, _ in timed[i : i + 5]] for i in range(0, len(timed), 5)]
    assert all(len(set(t)) == 5 for t in turns)  # every mode once per slice
    assert all(b == a[::-1] for a, b in zip(turns[::2], turns[1::2]))  # forwards, then backwards


def test_knob_settings_and_dsp_baseline_take_turns(tmp_path, monkeypatch):
    """The RTF at detail 1 and 0 and the DSP-only baseline's come from engines streaming the
    signal in turn, slice by slice (forwards, then backwards), and their ratios are the medians
    of the per-slice ratios (not a quotient of runs made minutes apart)."""
    import vqblur.measure.inturn as inturn
    import vqblur.measure.run as run
    from tests.toy_bundle import make_toy_bundle
    from vqblur.engine.bundle import load_bundle
    from vqblur.measure.harness import knob_settings

    calls: list[tuple[int, float]] = []
    real = inturn.run_blocks

    def spy(eng, x, block):
        y, bt = real(eng, x, block)
        calls.append((id(eng), float(bt.sum())))
        return y, bt

    monkeypatch.setattr(inturn, "run_blocks", spy)
    a = make_toy_bundle(tmp_path / "a")
    o = run.BenchOptions(bundles=[a], quick=True, seconds=0.5, sets=[], repeats=1)
    x = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    settings = knob_settings(o.params_cls)
    r = run.settings_rtf(load_bundle(a), settings, o, x)
    timed = calls[3:]  # after the three engines' warm-ups
    assert r["rounds"] == 4 and len(timed) == 3 * r["slices"]
    turns = [timed[i : i + 3] for i in range(0, len(timed), 3)]
    ids = [[e for e, _ in t] for t in turns]
    assert all(len(set(t)) == 3 for t in ids)
    assert all(b == a[::-1] for a, b in zip(ids[::2], ids[1::2]))
    # per engine, its slices' times, in the order of the first turn (detail 1, detail 0, DSP)
    order = ids[0]
    per = {e: [s for t in turns for f, s in t if f == e] for e in order}
    d1, d0, dsp = (np.asarray(per[e]) for e in order)
    assert r["ratio"] == pytest.approx(float(np.median(d1 / d0)))
    assert r["ratio_to_dsp"]["detail=1"] == pytest.approx(float(np.median(d1 / dsp)))
    assert r["ratio_to_dsp"]["detail=0"] == pytest.approx(float(np.median(d0 / dsp)))
    audio = r["slices"] * r["slice_s"]
    assert r["detail=1"] == pytest.approx(d1.sum() / audio) and r["dsp_rtf"] == pytest.approx(dsp.sum() / audio)
    assert len(r["runs"]["detail=0"]) == r["rounds"] == len(r["dsp_runs"])
