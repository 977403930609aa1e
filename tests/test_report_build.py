"""`vqblur report` from a tiny fake training log and a quick bench of the toy bundle: the report
is written, every figure it references exists and is a PNG, and the sections are there."""

from __future__ import annotations

import json
import re

import pytest

from tests.toy_bundle import make_toy_bundle


def _fake_run(d):
    d.mkdir()
    recs = [{"event": "start", "step": 0, "world_size": 1, "device": "cpu"}]
    for s in (1, 10, 20, 30):
        recs.append({"event": "step", "step": s, "lr": 1e-3, "wall_s": s * 0.5, "loss": 2.0 / s,
                     "l1": 1.0 / s, "sc": 1.0 / s, "commitment": 0.01, "codebook": 0.0,
                     "perplexity": 10.0 * s, "usage": min(1.0, s / 30)})
    recs.append({"event": "eval", "step": 20, "sc_db": -5.0, "lsd_db": 6.0, "perplexity": 80.0,
                 "codes_in_use": 0.7})
    recs.append({"event": "end", "steps": 30, "wall_seconds": 15.0, "energy_j": 150.0,
                 "energy_method": "estimated", "device": "cpu"})
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from vqblur.cli import main

    d = tmp_path_factory.mktemp("report")
    bundle = make_toy_bundle(d / "toy")
    # what `vqblur export` records: the fit-nb summary and the run's summary
    from vqblur.engine.bundle import write_manifest

    m = json.loads((bundle / "manifest.json").read_text())
    ev = {"n_cells": 100, "models": {"unigram": {"nll_nats": 5.0, "top1": 0.05, "top5": 0.2},
                                     "full": {"nll_nats": 3.0, "top1": 0.4, "top5": 0.7}}}
    m["nb"]["evaluation"] = {"seconds": {"encode": 2.0, "fit": 1.0}, "evaluation": {"test": ev}}
    m["training"]["metrics"] = {"summary": {"wall_seconds": 7200.0, "energy_j": 3.6e6, "energy_method": "estimated",
                                            "steps": 1000, "device": "cpu"}}
    write_manifest(bundle, m)
    run = _fake_run(d / "run")
    bench = d / "bench.json"
    assert main(["bench", "--bundle", str(bundle), "--quick", "--quiet", "--json", str(bench),
                 "--blocks", "64,512", "--no-render"]) == 0
    out = d / "out"
    assert main(["report", "--bench", str(bench), "--run", str(run), "--out", str(out), "--clips", "1",
                 "--quiet", "--no-listen"]) == 0  # the listening page: tests/test_listen_page.py
    return out


def test_report_and_figures(built):
    md = (built / "REPORT.md").read_text()
    figs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figs) == 8
    for f in figs:
        p = built / f
        assert p.is_file(), f
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 5000
    for name in ("training_curves", "codebook_usage", "spectrograms", "block_compute", "latency_hist",
                 "rtf_vs_block", "blur_curve"):
        assert f"figures/{name}.png" in figs


def test_report_sections(built):
    md = (built / "REPORT.md").read_text()
    for section in ("## Targets", "## Latency", "## Compute", "## Memory and energy", "## Quality",
                    "## Codebook", "## Naive Bayes evaluation", "## Training curves"):
        assert section in md
    assert "estimated" in md  # the energy method is shown with the number
    assert "fit-nb evaluation on test (manifest): full | 100 | 3.000 | 5.000 | 40.0%" in md
    assert "| toy | 7200 | 2.00 | 3.6e+06 | estimated | 400 |" in md
    assert "quick" in md
    assert (built / "bench.json").is_file()
    # the blur-cost rounds, read by the column step (tests/test_report_blur_cost.py)
    assert "Blur and stereo cost (toy" in md and "**Blur v2 against v1: the column step x" in md


def test_report_missing_run_is_user_error(tmp_path, capsys):
    from vqblur.cli import main

    assert main(["report", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_report_refuses_an_old_bench_json(tmp_path, capsys):
    from vqblur.cli import main

    old = tmp_path / "old.json"
    old.write_text('{"vqblur_bench_version": 1, "bundles": []}')
    assert main(["report", "--bench", str(old), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "older `vqblur bench`" in capsys.readouterr().err
