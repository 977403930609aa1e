"""`vqblur bench` orchestration: :func:`run_bench` measures every bundle (fp32 and an int8 sibling
side by side when one exists) and returns a JSON-able dict; :func:`vqblur.measure.table.format_table`
prints it. Per bundle (see docs/MEASURING.md for the definitions and the evaluation sets):

latency     :mod:`vqblur.measure.latency` (declared vs measured, jitter)
compute     :mod:`vqblur.measure.compute` (RTF per thread count and per knob setting, per-block
            and per-column compute and deadline misses, microseconds per column per part and
            inside onnxruntime, a DSP-only baseline), MACs per column (:mod:`vqblur.measure.macs`)
cost        :mod:`vqblur.measure.cost` (peak RSS, bundle size, training cost) and energy per
            audio second (:mod:`vqblur.common.energy`)
quality     :mod:`vqblur.measure.quality` per evaluation set (:mod:`vqblur.measure.sets`) and
            knob setting (``detail`` 1 and 0 when the engine has that knob), blur strength
nb          :mod:`vqblur.measure.nb` (held-out Naive Bayes evaluation)
playability :mod:`vqblur.measure.playability` (level, limiter, flux, where the change lies, over a
            knob grid on real recordings; the first bundle also with the previous blur, v1)
targets     :mod:`vqblur.measure.targets`

Benchmarks are not timed tests: ``quick=True`` only makes everything short.
Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vqblur.engine.bundle import load_bundle
from vqblur.engine.core import Params
from vqblur.engine.dsp import SignalConfig
from vqblur.measure.codes import encode_codes
from vqblur.measure.compute import (
    bench_blocks,
    bench_ort_share,
    bench_rtf,
    breakdown_of,
    column_summary,
    host_stalls,
    per_column_us,
)
from vqblur.measure.cost import bundle_size_mb, peak_rss, training_cost
from vqblur.measure.harness import (
    codec_setting,
    dsp_engine,
    knob_names,
    knob_settings,
    make_params,
    model_engine,
    params_dict,
    setting_label,
    synth_audio,
    timing_params,
    zone0_params,
)
from vqblur.measure.inturn import in_turn, per_pass_rtf, slice_ratios
from vqblur.measure.latency import bench_latency
from vqblur.measure import playability
from vqblur.measure.macs import bundle_macs
from vqblur.measure.nb import manifest_nb_metrics, nb_heldout
from vqblur.measure.quality import (CODEC_ALONE, QUALITY_METHOD, blur_curve, blur_strength, sine_level,
                                    zone0_quality)
from vqblur.measure.sets import SET_KEYS, EvalSet, excerpt, folder_set, gm_test_set, real_set
from vqblur.measure.targets import TARGETS, check_targets

BENCH_VERSION = 2
DEFAULT_THREADS = (1, 2)
DEFAULT_BLOCKS = (32, 64, 128, 256, 512, 1024)
DEFAULT_SECONDS = 10.0
#: host blocks whose deadline misses are targets, measured over ``deadline_seconds``
DEADLINE_BLOCKS = (64, 128)
#: blur-strength curve grid
CURVE_ZONES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
CURVE_TEMPS = (0.0, 0.5, 1.0)
#: playability grid: real recordings (spread over the test set), each its loudest stretch
PLAYABILITY_CLIPS = 12
PLAYABILITY_SECONDS = 3.0


@dataclass
class BenchOptions:
    """What to measure and how long. ``quick`` shortens everything (tests, smoke runs)."""

    bundles: Sequence[str | Path]
    threads: Sequence[int] = DEFAULT_THREADS
    blocks: Sequence[int] = DEFAULT_BLOCKS
    seconds: float = DEFAULT_SECONDS  # audio per timing run
    deadline_seconds: float = 30.0  # audio for the deadline-miss count at DEADLINE_BLOCKS
    audio_dir: str | Path | None = None
    sets: Sequence[str] = SET_KEYS  # evaluation sets: "real", "gm_test"
    render: bool = True  # render the GM test split when it is not on disk
    watts_per_core: float | None = None
    quick: bool = False
    seed: int = 0
    repeats: int = 3
    excitations: int = 32
    clips: int = 16  # GM test clips for quality / NB (at most)
    real_clips: int | None = None  # real recordings (None: the whole test set)
    find_int8: bool = True
    params_cls: type = Params  # the engine's knob dataclass (tests pass a subclass)
    timing_knobs: Mapping[str, float] = field(default_factory=dict)  # overrides for the timing runs
    log: Callable[[str], None] = field(default=lambda s: None, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.sets) - set(SET_KEYS)
        if unknown:
            raise ValueError(f"unknown evaluation set(s) {sorted(unknown)}; choose from {', '.join(SET_KEYS)}")
        if self.quick:
            self.seconds = min(self.seconds, 2.0)
            self.deadline_seconds = min(self.deadline_seconds, 2.0)
            self.repeats = min(self.repeats, 2)
            self.excitations = min(self.excitations, 8)
            self.clips = min(self.clips, 2)
            self.real_clips = min(self.real_clips or 2, 2)


def find_int8_sibling(root: Path) -> Path | None:
    root = Path(root)
    for cand in (root.parent / f"{root.name}_int8", root.parent / f"{root.name}-int8", root / "int8"):
        if (cand / "manifest.json").is_file():
            return cand
    return None



def _timing_signal(sets: list[EvalSet], seconds: float, sr: int, seed: int) -> np.ndarray:
    pool = [a for s in sets if s.comparable for _, a in s.clips] or [a for s in sets for _, a in s.clips]
    x = np.concatenate(pool) if pool else synth_audio(seconds, sr, seed)
    n = int(seconds * sr)
    while len(x) < n:
        x = np.concatenate([x, x])
    return np.ascontiguousarray(x[:n], dtype=np.float32)


def _primary(sets: list[EvalSet]) -> EvalSet | None:
    """The set the headline figures come from: real recordings, else the GM test split."""
    for key in ("real", "gm_test", "audio"):
        for s in sets:
            if s.key == key and s.clips and s.comparable:
                return s
    return next((s for s in sets if s.clips), None)


def _loudest_clip(s: EvalSet | None, seconds: float, sr: int, seed: int) -> np.ndarray:
    if s is None or not s.clips:
        return synth_audio(seconds, sr, seed)
    a = max((a for _, a in s.clips), key=lambda a: float(np.mean(a.astype(np.float64) ** 2)))
    return a[: int(seconds * sr)]


def _timing_knobs(o: BenchOptions):
    """The knob snapshot of the timing runs: the bench's timing settings, then ``--zone-size``
    etc. from the command line."""
    P = o.params_cls
    return make_params(P, **{**params_dict(timing_params(P)), **o.timing_knobs})


def bench_bundle(path: Path, o: BenchOptions, sets: list[EvalSet], before: bool = False) -> dict:
    """Everything measured for one bundle (see the module doc)."""
    log = o.log
    P = o.params_cls
    bundle = load_bundle(path)
    sr = bundle.sample_rate
    cfg = SignalConfig.from_bundle(bundle)
    man = bundle.manifest
    settings = knob_settings(P)
    labels = [setting_label(s) for s in settings]
    codec = setting_label(codec_setting(settings))
    tparams = _timing_knobs(o)
    res: dict[str, Any] = {
        "name": Path(bundle.root).name, "path": str(bundle.root), "precision": bundle.precision,
        "sample_rate": sr, "rows": bundle.rows, "codebook_size": bundle.codebook_size,
        "bundle_mb": bundle_size_mb(bundle.root), "knob_settings": labels,
    }
    res["macs_per_column"] = bundle_macs(bundle)

    log(f"[{res['name']}] latency ({o.excitations} excitations)")
    res.update(bench_latency(lambda: model_engine(bundle, zone0_params(P), seed=o.seed), sr, o.excitations, o.seed))

    x = _timing_signal(sets, o.seconds, sr, o.seed)
    n = len(x)
    res["timing_audio_seconds"] = n / sr
    res["timing_params"] = params_dict(tparams)

    rtf: dict[str, float] = {}
    res["energy_by_threads"] = {}
    for th in o.threads:
        log(f"[{res['name']}] rtf, {th} thread(s), {o.repeats} x {n / sr:.1f} s")
        r = bench_rtf(lambda th=th: model_engine(bundle, tparams, threads=th, seed=o.seed),
                      x, sr, o.repeats, o.watts_per_core)
        rtf[str(th)] = r["rtf"]
        res.setdefault("rtf_runs", {})[str(th)] = r["rtf_runs"]
        res["energy_by_threads"][str(th)] = r["energy_j_per_audio_s"]
        if th == o.threads[0]:
            stats, cols, wall = r["_stats"]
            res["breakdown"] = breakdown_of(stats, wall)
            res["breakdown_ms_per_audio_s"] = {k: 1000.0 * stats.get(k, 0.0) / (n / sr) for k in
                                               ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")}
            res["per_column_us"] = per_column_us(stats)
            res["columns"] = column_summary(cols, cfg)
            res["columns"]["times_ms"] = [round(v, 4) for v in (1000.0 * cols).tolist()]
            res["energy_j_per_audio_s"] = r["energy_j_per_audio_s"]
            res["energy_method"] = r["energy_method"]
            res["energy_source"] = r["energy_source"]
            res["energy_threads"] = th
            res["cpu_s_per_audio_s"] = r["cpu_s_per_audio_s"]
            res["preemptions_per_audio_s"] = r["preemptions_per_audio_s"]
        res.setdefault("rtf_cpu", {})[str(th)] = r["cpu_s_per_audio_s"]
    res["rtf"] = rtf

    th0 = o.threads[0]
    by = settings_rtf(bundle, settings, o, x)
    if len(settings) > 1:
        res["rtf_by_setting"] = by

    log(f"[{res['name']}] time inside onnxruntime's run (one more run)")
    res["ort_share"] = bench_ort_share(lambda: model_engine(bundle, tparams, threads=th0, seed=o.seed),
                                       x[: int(min(o.seconds, 5.0) * sr)])

    blocks = list(dict.fromkeys(list(o.blocks) + list(DEADLINE_BLOCKS)))
    long_x = _timing_signal(sets, o.deadline_seconds, sr, o.seed)
    log(f"[{res['name']}] host blocks {blocks} ({o.seconds:g} s; {list(DEADLINE_BLOCKS)}: {o.deadline_seconds:g} s)")
    mk = lambda: model_engine(bundle, tparams, threads=th0, seed=o.seed)  # noqa: E731
    res["blocks"] = {}
    for B in blocks:
        sig = long_x if B in DEADLINE_BLOCKS else x
        res["blocks"].update(bench_blocks(mk, sig, sr, [B]))
        res["blocks"][str(B)]["audio_seconds"] = len(sig) / sr

    log(f"[{res['name']}] DSP-only baseline (IdentityCodec)")
    b = bench_rtf(lambda: dsp_engine(bundle, tparams), x, sr, o.repeats, o.watts_per_core)
    bstats, bcols, bwall = b["_stats"]
    base_blocks = bench_blocks(lambda: dsp_engine(bundle, tparams), x, sr, [512])
    ratio = by["ratio_to_dsp"][labels[0]]  # the timing knobs' engine over the DSP-only one, in turn
    res["baseline_dsp"] = {
        "codec": "IdentityCodec (STFT analysis + synthesis, no model, no blur)",
        "rtf": by["dsp_rtf"], "rtf_runs": by["dsp_runs"],
        "rtf_ratio": ratio, "model_share": 1.0 - 1.0 / max(ratio, 1e-12),
        "rtf_method": by["method"],
        "energy_j_per_audio_s": b["energy_j_per_audio_s"], "energy_method": b["energy_method"],
        "columns": column_summary(bcols, cfg),
        "block_512": {k: v for k, v in base_blocks["512"].items() if k != "times_ms"},
        "breakdown": breakdown_of(bstats, bwall),
        "per_column_us": per_column_us(bstats),
    }
    res["baseline_dsp"].update(bench_latency(lambda: dsp_engine(bundle, zone0_params(P)), sr,
                                             min(o.excitations, 6), o.seed))
    for k in ("latency_measurements_samples", "latency_by_excitation_samples", "latency_method",
              "latency_excitations"):
        res["baseline_dsp"].pop(k, None)

    log(f"[{res['name']}] peak RSS (subprocess)")
    res["memory"] = peak_rss(bundle.root, min(o.seconds, 2.0))
    res["peak_rss_mb"] = res["memory"].get("peak_rss_mb")

    q: dict[str, Any] = {"method": QUALITY_METHOD, "settings": labels, "codec_setting": codec, "sets": {}}
    codec_knobs = codec_setting(settings)
    alone = codec_knobs.get("detail", 1.0) < 1.0  # a level hold to switch off
    for s in sets:
        log(f"[{res['name']}] zone-0 quality: {s.title} ({len(s.clips)} clips) at {', '.join(labels)}")
        d = {**s.describe(sr), "by_setting": {}}
        for st, lab in zip(settings, labels):
            d["by_setting"][lab] = zone0_quality(bundle, s.clips, st, P, o.seed)
        if alone:  # the codec's setting with its level hold off: the model alone (not a knob setting)
            d["by_setting"][codec + CODEC_ALONE] = zone0_quality(
                bundle, s.clips, codec_knobs, P, o.seed, hold_codec_level=False)
        q["sets"][s.key] = d
    q["sine_440"] = {lab: sine_level(bundle, st, P, seed=o.seed) for st, lab in zip(settings, labels)}
    if alone:
        q["sine_440"][codec + CODEC_ALONE] = sine_level(bundle, codec_knobs, P, seed=o.seed,
                                                        hold_codec_level=False)
    res["quality"] = q
    prim = _primary(sets)
    head = (q["sets"].get(prim.key, {}).get("by_setting", {}).get(codec, {}) if prim else {})
    res["headline_set"] = prim.key if prim else None
    for k in ("sc_db", "lsd_db", "lsd_db_floor100", "level_change_db"):
        res[k] = head.get(k)

    log(f"[{res['name']}] Naive Bayes held-out evaluation")
    nb_clips = (prim.clips if prim else [])[: max(o.clips, 1)]
    grids = [encode_codes(bundle, a) for _, a in nb_clips]
    res["nb"] = {"heldout": nb_heldout(bundle, grids) if grids else {"cells": 0},
                 "heldout_source": prim.source if prim else None, "fit": manifest_nb_metrics(man)}
    res["_grids"] = grids  # for the side-by-side comparison (removed before returning)

    log(f"[{res['name']}] blur-strength curves")
    clip = _loudest_clip(prim, 1.0 if o.quick else 2.0, sr, o.seed)
    zones = (0.0, 0.25, 0.5, 1.0) if o.quick else CURVE_ZONES
    temps = (0.5,) if o.quick else CURVE_TEMPS
    res["blur_curve"] = blur_curve(bundle, clip, zones, temps, o.seed, settings[0], P)
    res["blur_curve_method"] = ("SC / LSD (dB, 80 dB range) of the blurred output against the zone-0 output on one "
                                f"clip (centre 0.5, mix 1, {labels[0]}); codes_changed: share of code cells the "
                                "streaming sampler changed")
    res["blur_strength"] = {lab: blur_strength(bundle, clip, zones, st, P, seed=o.seed)
                            for st, lab in zip(settings, labels)}
    if bundle.rows_macro and "scale" in {f.name for f in dataclasses.fields(P)}:
        # codec v2: the zone on the macro map (scale on), at each setting too
        for st, lab in zip(settings, labels):
            st2 = {**st, "scale": 1.0}
            res["blur_strength"][setting_label(st2)] = blur_strength(bundle, clip, zones, st2, P, seed=o.seed)
    res["blur_strength_method"] = ("mean |dB change| (power, 80 dB range) of the blurred output against the "
                                   "zone-0 output at the same knobs, inside the zone's frequency bands and outside "
                                   "them; temperature 0.5, centre 0.5, one clip")

    log(f"[{res['name']}] playability: level, limiter, flux and where the change lies over a knob grid")
    pclips = playability.pick_clips(prim.clips if prim else [], 2 if o.quick else PLAYABILITY_CLIPS,
                                    1.5 if o.quick else PLAYABILITY_SECONDS, sr)
    res["playability"] = playability.measure(bundle, pclips, quick=o.quick, seed=o.seed,
                                             versions=(2, 1) if before else (2,), log=log)

    res["training_cost"] = training_cost(man)
    res["targets"] = check_targets(res)
    return res


def settings_rtf(bundle, settings: list[dict[str, float]], o: BenchOptions, x: np.ndarray) -> dict:
    """RTF at each knob setting (the timing knobs at ``detail`` 1 and 0) and of the DSP-only
    baseline (IdentityCodec: the engine's STFT and overlap-add, no model, no blur), the engines
    streaming ``x`` in turn, slice by slice (:func:`~vqblur.measure.inturn.in_turn`;
    ``max(repeats, 4)`` passes, the bench's first thread count). Per setting: its RTF, its RTF per
    pass (``runs``) and ``ratio_to_dsp`` (the median over slices of its slice's time over the
    DSP-only engine's); the DSP-only engine's ``dsp_rtf`` and ``dsp_runs``; ``ratio``: the first
    setting over the second, the same way."""
    P = o.params_cls
    th0 = o.threads[0]
    sr = bundle.sample_rate
    labels = [setting_label(s) for s in settings]
    engines = [model_engine(bundle, timing_params(P, s), threads=th0, seed=o.seed) for s in settings]
    engines.append(dsp_engine(bundle, timing_params(P, settings[0])))
    rounds = max(o.repeats, 4)
    t = in_turn(engines, [x] * len(engines), rounds, sr, o.log,
                f"[{Path(bundle.root).name}] rtf at {', '.join(labels)} and DSP-only, {th0} thread(s)")
    rtf = [float(sum(v)) / t["audio_s"] for v in t["block_s"]]
    to_dsp = slice_ratios(t["block_s"], len(engines) - 1)
    by: dict[str, Any] = {lab: r for lab, r in zip(labels, rtf)}
    by["runs"] = {lab: per_pass_rtf(v, t["per_pass"], t["n"] / sr) for lab, v in zip(labels, t["block_s"])}
    by["ratio_to_dsp"] = dict(zip(labels, to_dsp[:-1]))
    by["dsp_rtf"] = rtf[-1]
    by["dsp_runs"] = per_pass_rtf(t["block_s"][-1], t["per_pass"], t["n"] / sr)
    if len(settings) > 1:
        by["ratio"] = slice_ratios(t["block_s"], 1)[0]
        by["ratio_of"] = f"{labels[0]} / {labels[1]}"
    by["threads"] = th0
    by["rounds"], by["slices"], by["slice_s"] = rounds, len(t["block_s"][0]), t["n"] / sr
    by["method"] = "in turn, slice by slice; ratios: medians of per-slice ratios"
    return by


def interleaved_rtf(paths: list[Path], o: BenchOptions, sets: list[EvalSet]) -> dict:
    """RTF of every bundle (1 thread, the timing knobs), the bundles' engines streaming the timing
    signal in turn, slice by slice (:func:`~vqblur.measure.inturn.in_turn`), so a machine that
    speeds up or slows down (a shared VM) biases no bundle. ``max(repeats, 6)`` passes; per pass
    each bundle's RTF (``rtf_runs``), over all of them its RTF, and its ratio to the first: the
    median over slices of the per-slice ratio, the figure to compare bundles by."""
    bundles = [load_bundle(p) for p in paths]
    tparams = _timing_knobs(o)
    sr = bundles[0].sample_rate
    x = _timing_signal(sets, o.seconds, sr, o.seed)
    rounds = max(o.repeats, 6)
    engines = [model_engine(b, tparams, threads=1, seed=o.seed) for b in bundles]
    t = in_turn(engines, [x] * len(engines), rounds, sr, o.log,
                f"interleaved rtf, 1 thread, {len(bundles)} bundles")
    return {"rounds": rounds, "slices": len(t["block_s"][0]), "slice_s": t["n"] / sr,
            "names": [Path(b.root).name for b in bundles],
            "rtf_runs": [per_pass_rtf(v, t["per_pass"], t["n"] / sr) for v in t["block_s"]],
            "rtf": [float(sum(v)) / t["audio_s"] for v in t["block_s"]],
            "ratio_to_first": slice_ratios(t["block_s"], 0)}


def stereo_rtf(path: Path, o: BenchOptions, sets: list[EvalSet]) -> dict:
    """The blur's and stereo's cost: mono, mono with the previous blur (v1: the cost target of blur
    v2 is a column step at most 1.1 x v1's), linked and independent stereo, and mono with the smear
    knob at 1 (1 thread, zone 0.3, detail 1, temperature 0.5); stereo input = the timing signal
    and a copy delayed by 7 ms at 0.7 (a real stereo difference).

    One engine per mode, all streaming the signal (``rounds`` passes) **in turn, slice by slice**
    (:func:`~vqblur.measure.inturn.in_turn`). Per mode: the RTF (block time over audio time) and the column step
    (``column_us``: the median of the engine's own per-column timer); ``ratio_to_mono`` /
    ``column_ratio_to_mono``: the median over slices of each slice's ratio to mono's (blur v2)
    same slice. ``independent_batched``: the independent engine decodes both channels' streams in
    one onnxruntime run per column (a bundle whose decoder takes a batch; the encoder graph takes
    one column, so its two runs stay)."""
    from vqblur.engine.core import Engine

    bundle = load_bundle(path)
    sr = bundle.sample_rate
    x = _timing_signal(sets, min(o.seconds, 4.0), sr, o.seed)
    d = int(0.007 * sr)
    xs = np.stack([x, 0.7 * np.concatenate([np.zeros(d, x.dtype), x[:-d]])], axis=1).astype(np.float32)
    p = make_params(o.params_cls, zone_size=0.3, detail=1.0, temperature=0.5)
    modes = {"mono": (x, {}, p), "mono_blur_v1": (x, {"blur_version": 1}, p),
             "linked": (xs, {"channels": 2, "stereo": "linked"}, p),
             "independent": (xs, {"channels": 2, "stereo": "independent"}, p)}
    if "smear" in knob_names(o.params_cls):  # the time smear's own cost (it is off in the others)
        modes["mono_smear"] = (x, {}, make_params(o.params_cls, zone_size=0.3, detail=1.0,
                                                  temperature=0.5, smear=1.0))
    rounds = max(o.repeats, 2 if o.quick else 12)  # passes over the signal
    names = list(modes)
    engines = [Engine(bundle, pm, threads=1, seed=o.seed, **kw) for _, kw, pm in modes.values()]
    t = in_turn(engines, [modes[m][0] for m in names], rounds, sr, o.log,
                f"blur and stereo cost, 1 thread: {' / '.join(names)}")
    batched = getattr(engines[names.index("independent")], "_streams", None) is not None

    def per_slice(v: list[list[float]]) -> dict[str, float]:
        return dict(zip(names, slice_ratios(v, 0)))

    return {"rounds": rounds, "slices": len(t["block_s"][0]), "slice_s": t["n"] / sr,
            "rtf": {m: float(sum(v)) / t["audio_s"] for m, v in zip(names, t["block_s"])},
            "ratio_to_mono": per_slice(t["block_s"]),
            "column_us": {m: 1e6 * float(np.median(c)) for m, c in zip(names, t["cols"])},
            "column_ratio_to_mono": per_slice(t["col_s"]),
            "independent_batched": batched,
            "knobs": "zone 0.3, detail 1, temperature 0.5, 1 thread"}


def compare_bundles(ref: dict, b: dict) -> dict:
    """Side by side (e.g. int8 against fp32): code agreement on the same clips and ratios/deltas."""
    ga, gb = ref.get("_grids") or [], b.get("_grids") or []
    same = total = 0
    for x, y in zip(ga, gb):
        if x.shape == y.shape:
            same += int((x == y).sum())
            total += x.size
    d = lambda k: (b.get(k) - ref.get(k)) if isinstance(b.get(k), (int, float)) and isinstance(ref.get(k), (int, float)) else None  # noqa: E731
    r1a, r1b = ref["rtf"].get("1"), b["rtf"].get("1")
    c1a, c1b = ref.get("rtf_cpu", {}).get("1"), b.get("rtf_cpu", {}).get("1")
    return {
        "reference": ref["name"],
        "code_agreement": same / total if total else None,
        "sc_db_delta": d("sc_db"), "lsd_db_delta": d("lsd_db"),
        "rtf_ratio": (r1b / r1a) if r1a and r1b else None,
        "rtf_cpu_ratio": (c1b / c1a) if c1a and c1b else None,
        "encoder_decoder_ms_per_audio_s": {
            ref["name"]: ref["breakdown_ms_per_audio_s"]["encoder"] + ref["breakdown_ms_per_audio_s"]["decoder"],
            b["name"]: b["breakdown_ms_per_audio_s"]["encoder"] + b["breakdown_ms_per_audio_s"]["decoder"]},
        "bundle_mb_ratio": b["bundle_mb"] / ref["bundle_mb"] if ref["bundle_mb"] else None,
    }


def host_info() -> dict:
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "loadavg": load, "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}


def run_bench(o: BenchOptions) -> dict:
    """Measure every bundle of ``o`` (plus an int8 sibling when found); JSON-able result."""
    t_start = time.perf_counter()
    paths: list[Path] = []
    for b in o.bundles:
        p = Path(b)
        if p not in paths:
            paths.append(p)
    if o.find_int8:
        for p in list(paths):
            s = find_int8_sibling(p)
            if s is not None and s not in paths:
                paths.append(s)
    first = load_bundle(paths[0])
    sr = first.sample_rate
    sets: list[EvalSet] = []
    if "real" in o.sets:
        o.log("reading the real-recording test set")
        sets.append(real_set(sr, o.real_clips))
    if "gm_test" in o.sets:
        sets.append(gm_test_set(sr, o.clips, o.seed, render=o.render, log=o.log))
    if o.audio_dir:
        sets.append(folder_set(o.audio_dir, sr, max(o.clips, 1) * (1 if o.quick else 4), o.seed))
    if o.quick:  # short excerpts keep --quick quick
        sets = [excerpt(s, 1.5, sr) for s in sets]
    result = {
        "vqblur_bench_version": BENCH_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host_info(),
        "settings": {"threads": list(o.threads), "blocks": list(o.blocks), "seconds": o.seconds,
                     "deadline_seconds": o.deadline_seconds, "deadline_blocks": list(DEADLINE_BLOCKS),
                     "repeats": o.repeats, "excitations": o.excitations, "quick": o.quick, "seed": o.seed,
                     "watts_per_core": o.watts_per_core, "audio_dir": str(o.audio_dir) if o.audio_dir else None,
                     "sets": [s.describe(sr) for s in sets],
                     "knob_settings": [setting_label(s) for s in knob_settings(o.params_cls)],
                     "timing_params": params_dict(timing_params(o.params_cls)),
                     "targets": {k: {"target": v[0], "cmp": v[1], "label": v[2]} for k, v in TARGETS.items()}},
        "bundles": [],
    }
    stall_s = 1.0 if o.quick else 10.0
    o.log(f"host stalls ({stall_s:g} s busy-waiting)")
    result["host_stalls"] = host_stalls(stall_s)
    for i, p in enumerate(paths):  # the first bundle also measures the previous blur (v1), for before/after
        result["bundles"].append(bench_bundle(p, o, sets, before=i == 0))
    if len(paths) > 1:
        result["interleaved_rtf"] = interleaved_rtf(paths, o, sets)
    result["stereo_rtf"] = stereo_rtf(paths[0], o, sets)
    ref = result["bundles"][0]
    for i, b in enumerate(result["bundles"][1:], start=1):
        b["vs_first"] = compare_bundles(ref, b)
        if "interleaved_rtf" in result:
            b["vs_first"]["rtf_ratio_interleaved"] = result["interleaved_rtf"]["ratio_to_first"][i]
    for b in result["bundles"]:
        b.pop("_grids", None)
    result["bench_seconds"] = time.perf_counter() - t_start
    return result


def strip_for_json(res: dict) -> dict:
    return json.loads(json.dumps(res, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
