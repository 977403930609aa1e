"""Knob-dependent measurements: with a ``detail`` knob on ``Params`` the bench measures zone-0
quality, blur strength and RTF at detail 1 and at detail 0 (targets on detail 0, the pure codec);
without it, once, as the engine is. A Params subclass with ``detail`` stands in for the engine's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from tests.toy_bundle import make_toy_bundle
from vqblur.engine.core import Params
from vqblur.measure.harness import codec_setting, knob_settings, setting_label, timing_params, zone0_params
from vqblur.measure.quality import CODEC_ALONE


@dataclass(frozen=True)
class DetailParams(Params):
    detail: float = 1.0


#: the engine's knobs without ``detail`` (the engine before the detail knob)
PlainParams = dataclasses.make_dataclass(
    "PlainParams", [(f.name, float, dataclasses.field(default=f.default))
                    for f in dataclasses.fields(Params) if f.name != "detail"], frozen=True)


def test_settings_follow_the_fields():
    assert knob_settings(PlainParams) == [{}]
    s = knob_settings(DetailParams)
    assert s == [{"detail": 1.0}, {"detail": 0.0}]
    assert [setting_label(x) for x in s] == ["detail=1", "detail=0"]
    assert codec_setting(s) == {"detail": 0.0} and codec_setting([{}]) == {}
    assert timing_params(DetailParams).detail == 1.0 and timing_params(DetailParams).zone_size == 0.3
    assert zone0_params(DetailParams, {"detail": 0.0}).detail == 0.0
    assert not hasattr(timing_params(PlainParams), "detail")


@pytest.fixture(scope="module")
def detail_bench(tmp_path_factory):
    from vqblur.measure.run import BenchOptions, run_bench, strip_for_json

    # an empty data root: no GM test split on disk, so (render off) the synthetic fallback
    mp = pytest.MonkeyPatch()
    mp.setenv("VQBLUR_DATA", str(tmp_path_factory.mktemp("empty-data")))
    root = make_toy_bundle(tmp_path_factory.mktemp("kb") / "toy")
    o = BenchOptions(bundles=[root], threads=[1], blocks=[512], seconds=0.5, deadline_seconds=0.5, repeats=1,
                     excitations=3, clips=1, real_clips=1, sets=("gm_test",), render=False, find_int8=False,
                     params_cls=DetailParams)
    try:
        return strip_for_json(run_bench(o))["bundles"][0]
    finally:
        mp.undo()


def test_quality_blur_and_rtf_at_both_settings(detail_bench):
    b = detail_bench
    assert b["knob_settings"] == ["detail=1", "detail=0"]
    q = b["quality"]
    assert q["codec_setting"] == "detail=0"
    # and the codec's setting once more with the engine's band level hold off: the model alone
    alone = "detail=0" + CODEC_ALONE
    assert set(q["sets"]["gm_test"]["by_setting"]) == {"detail=1", "detail=0", alone}
    assert set(q["sine_440"]) == {"detail=1", "detail=0", alone}
    assert q["sets"]["gm_test"]["by_setting"][alone]["clips"] == q["sets"]["gm_test"]["by_setting"]["detail=0"]["clips"]
    assert set(b["blur_strength"]) == {"detail=1", "detail=0"}
    r = b["rtf_by_setting"]
    assert r["detail=1"] > 0 and r["detail=0"] > 0
    # the two settings' engines in turn, slice by slice: the ratio is the per-slice ratios' median
    assert r["ratio"] > 0 and r["ratio_of"] == "detail=1 / detail=0" and "in turn" in r["method"]
    assert len(r["runs"]["detail=1"]) == r["rounds"] and set(r["ratio_to_dsp"]) == {"detail=1", "detail=0"}
    assert b["timing_params"]["detail"] == 1.0 and b["timing_params"]["zone_size"] == 0.3
    assert "rtf_detail_ratio" in b["targets"]
    # the synthetic fallback (render off) is never checked against quality targets
    assert not any(k.startswith(("sc_db", "lsd_db", "level_change_db")) for k in b["targets"])
