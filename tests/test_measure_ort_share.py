"""The time inside onnxruntime's run is measured by wrapping the session class's run methods,
which are restored afterwards; per-column microseconds add up."""

from __future__ import annotations

import numpy as np

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.bundle import load_bundle
from vqblur.engine.core import Params
from vqblur.measure.compute import bench_ort_share, ort_run_timer, per_column_us
from vqblur.measure.harness import model_engine, run_blocks


def test_timer_sees_every_call_and_restores(tmp_path):
    import onnxruntime as ort

    from onnxruntime.capi import onnxruntime_pybind11_state as c_api

    before = {"run": ort.InferenceSession.run, "c_iobinding": c_api.InferenceSession.run_with_iobinding}
    b = load_bundle(make_toy_bundle(tmp_path / "toy"))
    x = (0.1 * np.random.default_rng(0).standard_normal(4800)).astype(np.float32)
    with ort_run_timer() as acc:
        eng = model_engine(b, Params(zone_size=0.0))  # its load-time trial runs count too
        assert acc["calls"] >= 2
        acc["calls"] = 0
        eng.stats.reset()
        run_blocks(eng, x, 512)
    assert acc["calls"] == 2 * eng.stats.columns > 0  # one encoder + one decoder run per column
    assert acc["seconds"] > 0
    assert ort.InferenceSession.run is before["run"]
    assert c_api.InferenceSession.run_with_iobinding is before["c_iobinding"]


def test_share_and_per_column(tmp_path):
    b = load_bundle(make_toy_bundle(tmp_path / "toy"))
    x = (0.1 * np.random.default_rng(0).standard_normal(9600)).astype(np.float32)
    r = bench_ort_share(lambda: model_engine(b, Params(zone_size=0.3)), x)
    # seen although the engine calls the C++ session directly (no Python wrapper in between)
    assert r["ort_run_us"] is not None and 0 < r["ort_run_us"] < r["total_us"]
    assert r["python_us"] == r["total_us"] - r["ort_run_us"]
    st = {"columns": 10, "stft": 1e-4, "encoder": 2e-4, "blur": 0.0, "decoder": 3e-4, "overlap_add": 1e-4,
          "mix": 0.0, "total": 7e-4}
    u = per_column_us(st)
    assert u["encoder"] == 20.0 and u["total"] == 70.0
