"""The report's blur-cost paragraph: blur v2's cost against v1's is read from the column step
(the engine's per-column timer) when the bench has it, judged against the x1.1 target, and an
older bench file (RTF only) still renders, saying so."""

from __future__ import annotations

from vqblur.measure.report import blur_cost_section


def _bench(v1_rtf_ratio: float, v1_col_ratio: float | None) -> dict:
    sr_ = {"rounds": 12, "knobs": "zone 0.3, detail 1, temperature 0.5, 1 thread",
           "rtf": {"mono": 0.15, "mono_blur_v1": 0.15 * v1_rtf_ratio, "linked": 0.17, "independent": 0.27},
           "ratio_to_mono": {"mono": 1.0, "mono_blur_v1": v1_rtf_ratio, "linked": 1.12, "independent": 1.79}}
    if v1_col_ratio is not None:
        sr_["column_us"] = {"mono": 460.0, "mono_blur_v1": 460.0 * v1_col_ratio, "linked": 500.0,
                            "independent": 820.0}
        sr_["column_ratio_to_mono"] = {"mono": 1.0, "mono_blur_v1": v1_col_ratio, "linked": 1.09,
                                       "independent": 1.78}
        sr_["slices"], sr_["slice_s"] = 444, 5120 / 48000
    return {"stereo_rtf": sr_}


def test_the_column_step_decides_the_target():
    text = "\n".join(blur_cost_section(_bench(0.97, 1 / 1.12), "default_bundle"))
    assert "**Blur v2 against v1: the column step x1.12** (missed; target <= 1.1), the RTF x1.03" in text
    text = "\n".join(blur_cost_section(_bench(1 / 1.12, 1 / 1.06), "default_bundle"))
    assert "**Blur v2 against v1: the column step x1.06** (ok; target <= 1.1), the RTF x1.12" in text
    assert "| linked stereo | 0.1700 | x1.12 | 500 | x1.09 | <= 1.25 |" in text
    assert "| independent stereo | 0.2700 | x1.79 | 820 | x1.78 | <= 1.8 |" in text
    assert "in turn, slice by slice (444 slices of 107 ms)" in text and "per-slice ratios" in text


def test_an_older_bench_reads_the_rtf_and_says_so():
    text = "\n".join(blur_cost_section(_bench(1 / 1.05, None), "default_bundle"))
    assert "**Blur v2 against v1: x1.05 by the RTF (this bench file has no column-step figures)** (ok" in text
    assert "| mono, blur v2 (the reference) | 0.1500 | x1.00 | - | - | - |" in text
    assert "12 rounds, each a short run from a fresh engine" in text


def test_no_blur_cost_rounds_no_paragraph():
    assert blur_cost_section({}, "default_bundle") == []
