"""The table `vqblur bench` prints: one column per bundle, one row per figure; targets that were
missed are listed with their values and the targets beside them."""

from __future__ import annotations

import math

from vqblur.measure.macs import format_macs
from vqblur.measure.nb import nb_fit_splits
from vqblur.measure.targets import COST_TARGETS, KINDS, KINDS_NOTE, missed, missed_summary

PART_LABELS = (("stft", "stft"), ("encoder", "enc"), ("blur", "blur"), ("decoder", "dec"),
               ("overlap_add", "ola"), ("mix", "mix"))


def _f(v, fmt="{:.3g}", none="-"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return fmt.format(v)


def setting_rtfs(b: dict, sep: str = ", ") -> str:
    """A bundle's RTF at each knob setting (``rtf_by_setting``): ``detail=1 0.1470, detail=0 0.1400``."""
    r = b["rtf_by_setting"]
    labels = b.get("knob_settings") or [k for k, v in r.items() if isinstance(v, float) and k not in ("ratio", "runs")]
    return sep.join(f"{k} {r[k]:.4f}" for k in labels if isinstance(r.get(k), float))


def _tempered(h: dict) -> str:
    """The NB's tempered held-out reading: NLL at T* (chosen on half the grids, read on the
    other half) and the unigram's on the same cells; '-' for a bench file without it."""
    t = h.get("tempered") or {}
    if "calibrated_nll_nats" not in t:
        return "-"
    return (f"{_f(t['calibrated_nll_nats'], '{:.3f}')} at T {t['best_T']:g} "
            f"({_f(t['calibrated_unigram_nll_nats'], '{:.3f}')}) nats/cell")


def _qual(r: dict) -> str:
    if not r.get("clips"):
        return "-"
    return (f"{_f(r.get('sc_db'), '{:.1f}')} / {_f(r.get('lsd_db'), '{:.2f}')} / "
            f"{_f(r.get('level_change_db'), '{:+.2f}')} dB (n={r['clips']})")


def host_stalls_text(hs: dict) -> str:
    """One line for the bench's host-stall probe (``measure.compute.host_stalls``)."""
    return (f"host stalls while busy-waiting {hs['seconds']:g} s: "
            + ", ".join(f"{n} > {k} ms" for k, n in hs["gaps_longer_than_ms"].items())
            + (f", longest {hs['longest_ms']:.2f} ms" if hs["longest_ms"] > 0 else "")
            + " (the process was not running: at small host blocks such stalls alone are "
              "deadline misses)")


def format_table(res: dict) -> str:
    """The bench result of :func:`vqblur.measure.run.run_bench` as a fixed-width text table."""
    bs = res["bundles"]
    names = [f"{b['name']} ({b['precision']})" for b in bs]
    rows: list[tuple[str, list[str]]] = []

    def add(label, fn):
        rows.append((label, [fn(b) for b in bs]))

    add("latency declared / measured", lambda b: f"{b['latency_samples']['declared']} / "
        f"{_f(b['latency_samples']['measured'], '{:.0f}')} smp = {b['latency_ms']['declared']:.2f} / "
        f"{_f(b['latency_ms']['measured'], '{:.2f}')} ms")
    add("jitter (std / range)", lambda b: f"{b['jitter_ms']['std']:.3f} / {b['jitter_ms']['range']:.3f} ms")
    for th in res["settings"]["threads"]:
        add(f"rtf, {th} thread{'s' if th > 1 else ''} (median)", lambda b, th=th: _f(b["rtf"].get(str(th)), "{:.4f}"))
    if any(b.get("rtf_by_setting") for b in bs):
        add("rtf by knob setting (1st thread count)", lambda b: "-" if not b.get("rtf_by_setting") else (
            setting_rtfs(b, " / ") + f" (ratio {b['rtf_by_setting']['ratio']:.2f}"
            + (", in turn)" if b["rtf_by_setting"].get("method") else ")")))
    add("CPU s per audio s (1st thread count)", lambda b: f"{b['cpu_s_per_audio_s']:.4f} "
        f"({b.get('preemptions_per_audio_s', 0):.0f} preemptions per audio s)")
    add("rtf, DSP-only baseline", lambda b: f"{b['baseline_dsp']['rtf']:.4f} (model x{b['baseline_dsp']['rtf_ratio']:.1f}, "
        f"{100 * b['baseline_dsp']['model_share']:.0f}% of cost)")
    c = bs[0]["columns"]
    add(f"column {c['column_samples']} smp ({c['column_ms']:.2f} ms) p50/p99/max",
        lambda b: f"{b['columns']['column_ms_p50']:.3f} / {b['columns']['column_ms_p99']:.3f} / "
        f"{b['columns']['column_ms_max']:.2f} ms (p99 = {b['columns']['p99_over_duration']:.2f} of the column; "
        "aim <= 0.5)")
    add("per column, us: " + "/".join(lab for _, lab in PART_LABELS) + " = total",
        lambda b: " / ".join(f"{b['per_column_us'][k]:.0f}" for k, _ in PART_LABELS)
        + f" = {b['per_column_us']['total']:.0f} us")
    add("  inside onnxruntime run / Python share", lambda b: (lambda o: "-" if o.get("ort_run_us") is None else
        f"{o['ort_run_us']:.0f} / {o['python_us']:.0f} us per column ({o['ort_calls_per_column']:.1f} calls)")(
        b.get("ort_share") or {}))
    add("  DSP-only baseline, us per column", lambda b: f"{b['baseline_dsp']['per_column_us']['total']:.0f} us")
    add("MACs per column enc / dec (measured us)", lambda b: (lambda m, u: f"{format_macs(m.get('encoder'))} "
        f"({u['encoder']:.0f} us) / {format_macs(m.get('decoder'))} ({u['decoder']:.0f} us)"
        + "".join(f", {k} {format_macs(v)}" for k, v in m.items()
                  if k not in ("encoder", "decoder", "source") and isinstance(v, int)))(
        b.get("macs_per_column") or {}, b["per_column_us"]))
    blocks = sorted({int(k) for k in bs[0]["blocks"]})
    for B in blocks:
        blk = bs[0]["blocks"][str(B)]
        secs = f", {blk['audio_seconds']:.0f} s" if "audio_seconds" in blk else ""
        add(f"block {B} ({blk['block_ms']:.2f} ms{secs}) p50/p99/max, misses",
            lambda b, B=B: (lambda k: f"{k['block_ms_p50']:.3f} / {k['block_ms_p99']:.3f} / {k['block_ms_max']:.2f} ms, "
                            f"{k['deadline_misses']}/{k['blocks']}")(b["blocks"][str(B)]))
    add("breakdown stft/enc/blur/dec/ola/mix", lambda b: " / ".join(
        f"{100 * b['breakdown'][k]:.0f}" for k in ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")) + " %")
    add("peak RSS / bundle", lambda b: f"{_f(b.get('peak_rss_mb'), '{:.0f}')} MB / {b['bundle_mb']:.2f} MB")
    add("energy per audio second", lambda b: f"{b['energy_j_per_audio_s']:.3g} J ({b['energy_method']}), "
        f"baseline {b['baseline_dsp']['energy_j_per_audio_s']:.3g} J")
    q0 = bs[0]["quality"]
    for key, st in q0["sets"].items():
        for lab in q0["settings"]:
            tag = "" if lab == "default" else f", {lab}"
            add(f"zone-0 SC / LSD / level ({st['title']}{tag})", lambda b, key=key, lab=lab: _qual(
                b["quality"]["sets"].get(key, {}).get("by_setting", {}).get(lab, {})))
    add("  LSD, old definition (-100 dB floor)", lambda b: "  ".join(
        f"{k}: " + " / ".join(_f(r.get("lsd_db_floor100"), "{:.2f}") for r in st["by_setting"].values())
        for k, st in b["quality"]["sets"].items()) + " dB")
    add("440 Hz sine level change at -24/-12/-3 dBFS", lambda b: "; ".join(
        ("" if lab == "default" else f"{lab}: ") + " / ".join(_f(x, "{:+.2f}") for x in v.get("by_dbfs", {}).values())
        for lab, v in b["quality"]["sine_440"].items()) + " dB")
    add("NB held-out NLL (unigram)", lambda b: f"{_f(b['nb']['heldout'].get('nll_nats'), '{:.3f}')} "
        f"({_f(b['nb']['heldout'].get('unigram_nll_nats'), '{:.3f}')}) nats/cell")
    add("NB held-out NLL tempered, T* (unigram, same cells)", lambda b: _tempered(b['nb']['heldout']))
    add("NB held-out top-1 / top-5", lambda b: f"{_f(b['nb']['heldout'].get('top1'), '{:.1%}')} / "
        f"{_f(b['nb']['heldout'].get('top5'), '{:.1%}')} (unigram {_f(b['nb']['heldout'].get('unigram_top1'), '{:.1%}')} / "
        f"{_f(b['nb']['heldout'].get('unigram_top5'), '{:.1%}')})")

    def nb_fit(b):
        sp = nb_fit_splits(b["nb"].get("fit"))
        if not sp:
            return "-"
        split = "test" if "test" in sp else next(iter(sp))
        m = sp[split]["models"]
        parts = [f"{k} {m[k]['nll_nats']:.3f}" for k in ("full", "causal", "unigram") if k in m and "nll_nats" in m[k]]
        best = "full" if "full" in m else ("causal" if "causal" in m else None)
        top = m.get(best, {}).get("top1") if best else None
        return f"{split}: " + ", ".join(parts) + (f" nats; {best} top-1 {top:.1%}" if top is not None else " nats")

    if any(b["nb"].get("fit") for b in bs):
        add("NB fit eval (manifest)", nb_fit)

    def curve(b):
        pts = [p for p in b["blur_curve"] if p["temperature"] == 0.5] or b["blur_curve"]
        return "  ".join(f"z{p['zone_size']:g}:{p['lsd_db']:.1f}" for p in pts) + " dB LSD"

    add("blur curve (t=0.5)", curve)
    for lab in list(bs[0].get("blur_strength") or {}) or q0["settings"]:
        add(f"blur strength in / out of zone ({lab})", lambda b, lab=lab: "  ".join(
            f"z{p['zone_size']:g}:{_f(p['inside_db'], '{:.1f}')}/{_f(p['outside_db'], '{:.2f}')}"
            for p in b["blur_strength"].get(lab, []) if p["zone_size"] > 0) + " dB")
    add("training time / energy / CO2e", lambda b: (lambda t: f"{_f(t['wall_seconds'], '{:.0f}')} s / "
        f"{_f(t['energy_j'], '{:.3g}')} J ({t['energy_method'] or '-'}) / {_f(t['co2e_g'], '{:.3g}')} g")(b["training_cost"]))
    if len(bs) > 1:
        add("vs first: codes agree / dSC / dLSD / RTF", lambda b: "-" if "vs_first" not in b else (
            lambda v: f"{_f(v['code_agreement'], '{:.1%}')} / {_f(v['sc_db_delta'], '{:+.2f}')} / "
                      f"{_f(v['lsd_db_delta'], '{:+.2f}')} dB / x{_f(v['rtf_ratio'], '{:.2f}')}")(b["vs_first"]))
    il = res.get("interleaved_rtf")
    if il:
        il_how = f"{il['slices']} slices in turn" if "slices" in il else f"{il['rounds']} rounds"
        add(f"rtf interleaved, 1 thread ({il_how})", lambda b: (lambda i: (
            f"{il['rtf'][i]:.4f}" + ("" if i == 0 else f" (x{il['ratio_to_first'][i]:.2f} of the first)"))
        )(next(k for k, x in enumerate(res["bundles"]) if x is b)))
    add("targets missed", lambda b: missed_summary(b["targets"])
        + (" (listed below)" if missed(b["targets"]) else ""))

    w0 = max(len(r[0]) for r in rows)
    ws = [max([len(n)] + [len(r[1][i]) for r in rows]) for i, n in enumerate(names)]
    h = res["host"]
    lines = [f"vqblur bench - {h['cpu']} ({h['usable_cpus']} usable CPUs, load {_f(h['loadavg'][0] if h['loadavg'] else None, '{:.1f}')}), "
             f"onnxruntime {h['onnxruntime']}; timing knobs "
             + ", ".join(f"{k} {v:g}" for k, v in res["settings"]["timing_params"].items()
                         if k not in ("centre", "mix", "bypass")),
             *[f"{'quality set' if st['comparable'] else 'quality set (NOT comparable)'}: {st['title']}: "
               f"{st['source']} ({st['clips']} clips, {st['seconds']:.0f} s){' - ' + st['note'] if st['note'] else ''}"
               for st in q0["sets"].values()],
             *([host_stalls_text(res["host_stalls"])] if "host_stalls" in res else []),
             "  ".join([" " * w0] + [n.ljust(w) for n, w in zip(names, ws)]),
             "  ".join(["-" * w0] + ["-" * w for w in ws])]
    for label, vals in rows:
        lines.append("  ".join([label.ljust(w0)] + [v.ljust(w) for v, w in zip(vals, ws)]))
    for b in bs:
        if missed(b["targets"]):
            lines.append(f"targets missed by {b['name']} ({b['precision']}), figure (target):")
            for which in KINDS:
                lines += [f"  {which:<9} {t}" for t in missed(b["targets"], which)]
    lines.append(KINDS_NOTE)
    sr_ = res.get("stereo_rtf")
    if sr_:
        r, q = sr_["rtf"], sr_["ratio_to_mono"]
        qc = sr_.get("column_ratio_to_mono")  # (bench files before 2026-12-02 have no column step)
        col = f", column step x{1 / qc['mono_blur_v1']:.2f}" if qc else ""
        how = (f"{sr_['slices']} slices of {1000 * sr_['slice_s']:.0f} ms, the modes in turn" if "slices" in sr_
               else f"{sr_['rounds']} interleaved rounds")
        lines.append(f"stereo and blur cost ({bs[0]['name']}, {sr_['knobs']}, {how}): "
                     f"RTF mono {r['mono']:.4f} (blur v1: {r['mono_blur_v1']:.4f}, v2 = x{1 / q['mono_blur_v1']:.2f} "
                     f"of v1{col}; target <= {COST_TARGETS['mono_blur_v1']}"
                     + (f"; the smear knob at 1: x{q['mono_smear']:.2f} more" if "mono_smear" in q else "")
                     + f"), linked stereo {r['linked']:.4f} (x{q['linked']:.2f} of mono; target "
                     f"<= {COST_TARGETS['linked']}), independent {r['independent']:.4f} (x{q['independent']:.2f}; "
                     f"target <= {COST_TARGETS['independent']}"
                     + ("; both channels' decoder streams in one run" if sr_.get("independent_batched") else "")
                     + ")")
    from vqblur.measure.playability import format_table as playability_table

    for b in bs:
        if b.get("playability"):
            lines += [f"{b['name']} ({b['precision']}) " + playability_table(b["playability"])[0],
                      *playability_table(b["playability"])[1:]]
    codec_sets = [f"{st['clips']} {key}" for key, st in q0["sets"].items() if st["comparable"]]
    if codec_sets:
        lines.append(f"  this run's codec figures are medians over {', '.join(codec_sets)} clips")
    lines.append(f"energy: {bs[0]['energy_source']}")
    lines.append(f"MACs: {(bs[0].get('macs_per_column') or {}).get('source', '-')}")
    lines.append(f"quality: {q0['method']}; targets apply to {q0['codec_setting']} on comparable sets")
    lines.append(f"bench took {res.get('bench_seconds', 0):.1f} s")
    return "\n".join(lines)


