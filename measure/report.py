"""Build ``report/REPORT.md`` and its figures (matplotlib PNG, ``report/figures/``): the report
builder, part of the installed package (``vqblur.measure.report``).

``build_report(out_dir, bench=None, bench_path=None, run_dir=None, bundle=None, ...)``:

* the benchmark numbers come from a ``vqblur bench --json`` file (``bench_path``), a bench
  result dict (``bench``), or a quick bench run here on ``bundle``;
* the training curves come from a run folder's ``metrics.jsonl`` (``run_dir``; default
  ``training/default_run``, the committed log of the default model's run, in a source
  checkout; an installed package has no run of its own: pass ``run_dir``);
* the codebook histogram, spectrograms and codemaps are computed here with the bundle's own
  encoder (``vqblur.engine.codec.OnnxCodec``) and the streaming blur sampler on test clips.

The output goes to ``out_dir``; by default the checkout's ``report/`` folder, or ``./report`` (in
the current folder) when running from an installed package.

Run as ``vqblur report`` or ``python -m vqblur.measure.report``. numpy, onnxruntime and matplotlib
only.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vqblur.engine.knobs import knob_to_temperature



def checkout_root() -> Path | None:
    """The source checkout this module runs from (``measure/report.py`` beside ``pyproject.toml``),
    or None for an installed package."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "measure" / "report.py").is_file() else None


REPO = checkout_root()
DEFAULT_RUN = REPO / "training" / "default_run" if REPO else None
FALLBACK_RUNS = (REPO / "runs" / "default",) if REPO else ()


def default_out_dir() -> Path:
    """The checkout's ``report/``, or ``./report`` for an installed package."""
    return REPO / "report" if REPO else Path.cwd() / "report"
#: blur settings shown in the spectrogram figure: the shipped presets' knobs, fully wet
SPECTRO_PRESETS = ("subtle", "smear", "chaos")

FIGURES = {
    "training": "training_curves.png",
    "codebook": "codebook_usage.png",
    "spectrograms": "spectrograms.png",
    "blocks": "block_compute.png",
    "latency": "latency_hist.png",
    "rtf": "rtf_vs_block.png",
    "blur": "blur_curve.png",
    "playability": "playability.png",
}


# ---------------------------------------------------------------------------- inputs


def read_metrics(path: Path) -> list[dict]:
    recs = []
    for line in Path(path).read_text(errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict):
            recs.append(r)
    return recs


def resolve_run(run_dir) -> Path | None:
    if run_dir is not None:
        p = Path(run_dir)
        if p.is_file():
            return p
        return p / "metrics.jsonl"
    for cand in (DEFAULT_RUN, *FALLBACK_RUNS):
        if cand is not None and (cand / "metrics.jsonl").is_file():
            return cand / "metrics.jsonl"
    return None


def preset_knobs(name: str) -> tuple[float, float, float]:
    """(zone size, temperature, centre) of a shipped effect preset."""
    from vqblur.engine.presets import load_preset

    p = load_preset(name).params
    return p.zone_size, p.temperature, p.centre


# ---------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def fig_training(recs: list[dict], path: Path, title: str) -> bool:
    steps = [r for r in recs if r.get("event", "step") == "step" and "step" in r]
    evals = [r for r in recs if r.get("event") == "eval"]
    if not steps and not evals:
        return False
    plt = _plt()
    fig, ax = plt.subplots(2, 2, figsize=(10, 6.5))
    s = np.array([r["step"] for r in steps])

    def col(rs, k):
        return np.array([r.get(k, np.nan) for r in rs], dtype=float)

    a = ax[0, 0]
    for k in ("loss", "l1", "sc", "commitment"):
        v = col(steps, k)
        if np.isfinite(v).any():
            a.plot(s, v, label=k, lw=1)
    a.set_title("training loss terms")
    a.set_xlabel("step")
    a.legend()
    a = ax[0, 1]
    if steps:
        a.plot(s, col(steps, "perplexity"), lw=1, label="train batch")
    if evals:
        a.plot([r["step"] for r in evals], col(evals, "perplexity"), "o-", label="validation")
    a.set_title("codebook perplexity")
    a.set_xlabel("step")
    a.legend()
    a = ax[1, 0]
    if steps:
        a.plot(s, col(steps, "usage"), lw=1, label="train batch (share of K)")
    if evals:
        a.plot([r["step"] for r in evals], col(evals, "codes_in_use"), "o-", label="validation (share of K)")
    a.set_ylim(0, 1.05)
    a.set_title("codes in use")
    a.set_xlabel("step")
    a.legend()
    a = ax[1, 1]
    if evals:
        es = [r["step"] for r in evals]
        a.plot(es, col(evals, "sc_db"), "o-", label="SC (dB)")
        a.plot(es, col(evals, "lsd_db"), "s-", label="LSD (dB)")
        a.axhline(-15, color="C0", ls=":", lw=1, label="SC target -15 dB")
        a.axhline(2, color="C1", ls=":", lw=1, label="LSD target 2 dB")
        a.legend(fontsize=7)
    else:
        a.text(0.5, 0.5, "no evaluation records", ha="center", va="center", transform=a.transAxes)
    a.set_title("validation reconstruction")
    a.set_xlabel("step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def fig_codebook(counts: np.ndarray, path: Path, title: str) -> None:
    plt = _plt()
    K = len(counts)
    p = counts / max(counts.sum(), 1)
    nz = p[p > 0]
    ppl = float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    ax[0].bar(np.arange(K), counts, width=1.0, color="C0")
    ax[0].set_xlabel("code index")
    ax[0].set_ylabel("cells")
    ax[0].set_title(f"code counts ({int((counts > 0).sum())}/{K} in use, perplexity {ppl:.0f})")
    srt = np.sort(counts)[::-1]
    srt = srt[srt > 0]
    ax[1].semilogy(np.arange(1, len(srt) + 1), srt, ".-", ms=3)
    ax[1].set_xlim(0, K + 1)
    ax[1].axhline(counts.sum() / K, color="k", ls=":", lw=1, label="uniform")
    ax[1].set_xlabel("rank")
    ax[1].set_ylabel("cells (log)")
    ax[1].set_title("rank-frequency")
    ax[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fig_spectrograms(panels: list[tuple[str, np.ndarray, np.ndarray]], sr: int, column_s: float,
                     path: Path, title: str, code_rank: np.ndarray | None = None) -> None:
    from vqblur.common.spectral import stft_magnitude

    plt = _plt()
    n = len(panels)
    fig, ax = plt.subplots(2, n, figsize=(3.0 * n, 5.6), gridspec_kw={"height_ratios": [3, 1.3]},
                           squeeze=False)
    specs = [20 * np.log10(stft_magnitude(a, 1024, 256) + 1e-6) for _, a, _ in panels]
    vmax = max(float(s.max()) for s in specs)
    K = max(int(c.max()) + 1 if c.size else 1 for _, _, c in panels)
    if code_rank is None:
        code_rank = np.arange(max(K, 256))
    ref_codes = panels[0][2]
    for i, ((name, audio, codes), S) in enumerate(zip(panels, specs)):
        dur = len(audio) / sr
        a = ax[0, i]
        a.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 90, vmax=vmax,
                 extent=(0, dur, 0, sr / 2000))
        a.set_title(name, fontsize=8)
        a.set_xlabel("s")
        a.grid(False)
        if i == 0:
            a.set_ylabel("kHz")
        b = ax[1, i]
        ext = (0, codes.shape[1] * column_s, 0, codes.shape[0])
        b.imshow(code_rank[codes], origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=len(code_rank) - 1,
                 interpolation="nearest", extent=ext)
        if i >= 2 and codes.shape == ref_codes.shape:
            changed = (codes != ref_codes).astype(float)
            rows_hit = np.where(changed.mean(axis=1) > 0.02)[0]
            if rows_hit.size and rows_hit.size < codes.shape[0]:
                for y0 in (rows_hit.min(), rows_hit.max() + 1):  # the zone's extent in rows
                    b.axhline(y0, color="cyan", lw=1.0, ls="--")
            b.set_title(f"{100 * changed.mean():.0f}% of cells changed", fontsize=7)
        b.grid(False)
        b.set_xlabel("s")
        if i == 0:
            b.set_ylabel("code row")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fig_blocks(bench: dict, path: Path) -> None:
    plt = _plt()
    b = bench["bundles"][0]
    sizes = sorted(b["blocks"], key=int)
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.2, 1]})
    a = ax[0]
    data = [np.maximum(np.asarray(b["blocks"][B]["times_ms"]) / b["blocks"][B]["block_ms"], 1e-4) for B in sizes]
    a.boxplot(data, whis=(1, 99), showfliers=True, flierprops={"markersize": 2, "alpha": 0.4})
    a.set_yscale("log")
    a.axhline(1.0, color="r", lw=1.2, label="deadline (block duration)")
    for i, B in enumerate(sizes, 1):
        k = b["blocks"][B]
        a.text(i, 1.25, f"{k['deadline_misses']} miss", ha="center", fontsize=7, color="r")
    a.set_xticks(range(1, len(sizes) + 1), [f"{B}\n{b['blocks'][B]['block_ms']:.2f} ms" for B in sizes])
    a.set_xlabel("host block (samples / duration)")
    a.set_ylabel("compute / block duration (log)")
    a.set_title("per-block compute vs deadline (box 25-75 %, whiskers 1-99 %)")
    a.legend(loc="lower right", fontsize=7)
    a = ax[1]
    c = b["columns"]
    t = np.asarray(c.get("times_ms", []))
    if t.size:
        lo, hi = max(float(t.min()), 1e-3), max(float(t.max()), c["column_ms"]) * 1.2
        a.hist(t, bins=np.geomspace(lo, hi, 60), color="C0", label=f"{t.size} columns")
    a.axvline(c["column_ms"], color="r", lw=1.2, label=f"column duration {c['column_ms']:.2f} ms")
    a.axvline(c["column_ms"] / 2, color="r", ls=":", lw=1, label="target: p99 <= half")
    a.axvline(c["column_ms_p50"], color="k", ls="-", lw=1, label=f"p50 {c['column_ms_p50']:.2f} ms")
    a.axvline(c["column_ms_p99"], color="k", ls="--", lw=1, label=f"p99 {c['column_ms_p99']:.2f} ms")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("compute per column (ms, log)")
    a.set_ylabel("columns (log)")
    a.set_title(f"compute per code column ({c['column_samples']} samples)")
    a.legend(fontsize=7)
    fig.suptitle(f"{b['name']} ({b['precision']}), {bench['host']['cpu']}, 1 thread, load "
                 f"{(bench['host'].get('loadavg') or [float('nan')])[0]:.1f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fig_latency(bench: dict, path: Path) -> None:
    plt = _plt()
    b = bench["bundles"][0]
    sr = b["sample_rate"]
    d = np.asarray(b["latency_measurements_samples"], float) * 1000.0 / sr
    kinds = b.get("latency_excitations") or ["all"] * len(d)
    fig, a = plt.subplots(figsize=(7, 3.4))
    lo, hi = float(d.min()) - 0.5, float(d.max()) + 0.5
    bins = np.linspace(lo, hi, 40)
    ks = [k for k in ("noise", "tone", "harmonic", "all") if k in kinds]
    a.hist([d[[k == kk for kk in kinds]] for k in ks], bins=bins, stacked=True, label=ks)
    a.axvline(b["latency_ms"]["declared"], color="k", ls="--", lw=1.2,
              label=f"declared {b['latency_ms']['declared']:.2f} ms")
    a.axvline(b["latency_ms"]["measured"], color="r", lw=1,
              label=f"measured (median) {b['latency_ms']['measured']:.2f} ms")
    a.set_xlabel("delay of the zone-0 output (ms, cross-correlation peak)")
    a.set_ylabel("excitations")
    a.set_title(f"measured latency over {len(d)} random excitations; jitter std "
                f"{b['jitter_ms']['std']:.2f} ms")
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def rtf_by_block(bb: dict) -> dict[int, float]:
    return {int(B): float(np.sum(k["times_ms"]) / (k["blocks"] * k["block_ms"])) for B, k in bb["blocks"].items()}


def fig_rtf(bench: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.6, 1]})
    a = ax[0]
    for i, b in enumerate(bench["bundles"]):
        r = rtf_by_block(b)
        xs = sorted(r)
        a.plot(xs, [r[x] for x in xs], "o-", color=f"C{i}", label=f"{b['name']} ({b['precision']})")
        base = b["baseline_dsp"].get("block_512")
        if base:
            a.plot([512], [b["baseline_dsp"]["rtf"]], "x", color=f"C{i}",
                   ms=9, label="DSP-only baseline (512)")
    a.axhline(0.10, color="r", ls="--", lw=1, label="target 0.10")
    a.axhline(0.05, color="g", ls=":", lw=1, label="aim 0.05")
    a.set_xscale("log", base=2)
    allb = sorted({int(B) for b in bench["bundles"] for B in b["blocks"]})
    a.set_xticks(allb, [str(B) for B in allb])
    a.minorticks_off()
    a.set_xlabel("host block (samples)")
    a.set_ylabel("compute s per audio s")
    a.set_title("real-time factor vs block size (1 thread)")
    a.legend(fontsize=7)
    a = ax[1]
    th = bench["settings"]["threads"]
    w = 0.8 / max(1, len(bench["bundles"]))
    for i, b in enumerate(bench["bundles"]):
        a.bar(np.arange(len(th)) + i * w, [b["rtf"].get(str(t), np.nan) for t in th], w,
              label=f"{b['name']} ({b['precision']})")
    a.set_xticks(np.arange(len(th)) + w * (len(bench["bundles"]) - 1) / 2, [str(t) for t in th])
    a.axhline(0.10, color="r", ls="--", lw=1)
    a.set_xlabel("onnxruntime threads")
    a.set_title("RTF vs threads (512-sample blocks)")
    a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fig_blur(bench: dict, path: Path) -> None:
    plt = _plt()
    b = bench["bundles"][0]
    curve = b["blur_curve"]
    temps = sorted({p["temperature"] for p in curve})
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for j, t in enumerate(temps):
        pts = sorted((p for p in curve if p["temperature"] == t), key=lambda p: p["zone_size"])
        z = [p["zone_size"] for p in pts]
        st = dict(color=f"C{j}", marker="osd^v"[j % 5], ls=("-", "--", ":", "-.")[j % 4], ms=7 - 1.5 * j)
        ax[0].plot(z, [p["lsd_db"] for p in pts], label=f"t={t:g} (T={knob_to_temperature(t):.2f})", **st)
        if all("codes_changed" in p for p in pts):
            ax[1].plot(z, [100 * p["codes_changed"] for p in pts], label=f"t={t:g}", **st)
    ax[0].set_xlabel("zone size knob")
    ax[0].set_ylabel("LSD vs zone-0 output (dB)")
    ax[0].set_title("spectral change")
    ax[0].legend(fontsize=7)
    ax[1].set_xlabel("zone size knob")
    ax[1].set_ylabel("% of code cells changed")
    ax[1].set_title("codes changed by the sampler")
    if ax[1].lines:
        ax[1].legend(fontsize=7)
    fig.suptitle(f"blur strength ({b['name']}, centre 0.5)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fig_playability(bench: dict, path: Path) -> bool:
    """Change, level, flux and contrast along frequency against zone size, per map and centre:
    blur v2 (solid) and, when the bench measured it, the previous blur (dashed). False when the
    bench has no grid. (A bench from before the contrast reading draws three panels.)"""
    b = bench["bundles"][0]
    vs = (b.get("playability") or {}).get("versions") or {}
    if "v2" not in vs:
        return False
    plt = _plt()
    panels = (("change_db", "mean |change| (dB, mel)"), ("level_db", "median |level change| (dB)"),
              ("flux", "flux, output / input"), ("contrast", "contrast along frequency, output / input"))
    curves_v2 = vs["v2"].get("curves", {})
    if not all("contrast" in c for c in curves_v2.values()):
        panels = panels[:3]
    fig, ax = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for v, ls in (("v2", "-"), ("v1", "--")):
        for j, (name, c) in enumerate((vs.get(v) or {}).get("curves", {}).items()):
            for a, (key, _) in zip(ax, panels):
                a.plot(c["zone_size"], c[key], ls=ls, marker="o" if v == "v2" else "x", color=f"C{j}",
                       label=f"{name} ({'blur v2' if v == 'v2' else 'before, v1'})", ms=4)
    for a, (_, lab) in zip(ax, panels):
        a.set_xlabel("zone size knob")
        a.set_ylabel(lab)
    ax[2].axhline(1.05, color="grey", lw=0.8, ls=":")
    ax[1].axhline(1.0, color="grey", lw=0.8, ls=":")
    if len(panels) > 3:  # the input's own contrast (a reading, no target)
        ax[3].axhline(1.0, color="grey", lw=0.6)
    ax[0].legend(fontsize=6)
    n = len(b["playability"].get("clips", []))
    fig.suptitle(f"playability ({b['name']}, {n} held-out real recordings, temperature 0.5, detail 1; "
                 f"dotted: the targets)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------- markdown


def _f(v, fmt="{:.3g}"):
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return "-"
    return fmt.format(v)


def _macs(n) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} M" if n >= 1e6 else (f"{n / 1e3:.1f} k" if n >= 1e3 else str(int(n)))


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _nb_rows(b: dict) -> list[list[str]]:
    rows = []
    h = b["nb"].get("heldout") or {}
    if h.get("cells"):
        rows.append([f"bench: bundle encoder on {b['nb'].get('heldout_source') or 'test clips'}, full neighbourhood",
                     f"{h['cells']}",
                     _f(h["nll_nats"], "{:.3f}"), _f(h["unigram_nll_nats"], "{:.3f}"),
                     _f(h["top1"], "{:.1%}"), _f(h["top5"], "{:.1%}"),
                     f"{_f(h['unigram_top1'], '{:.1%}')} / {_f(h['unigram_top5'], '{:.1%}')}"])
        t = h.get("tempered") or {}
        if "calibrated_nll_nats" in t:
            rows.append([f"the same, tempered: P ∝ exp(L / T), T = {t['best_T']:g} chosen on half the clips, "
                         f"read on the other half", f"{t['calibrated_cells']}",
                         _f(t["calibrated_nll_nats"], "{:.3f}"), _f(t["calibrated_unigram_nll_nats"], "{:.3f}"),
                         "-", "-", "-"])
    from vqblur.measure.nb import nb_fit_splits

    for split, ev in nb_fit_splits(b["nb"].get("fit")).items():
        models = ev["models"]
        uni = models.get("unigram", {})
        for name, m in models.items():
            if name == "unigram" or not isinstance(m, dict):
                continue
            rows.append([f"fit-nb evaluation on {split} (manifest): {name}", str(ev.get("n_cells", "-")),
                         _f(m.get("nll_nats"), "{:.3f}"), _f(uni.get("nll_nats"), "{:.3f}"),
                         _f(m.get("top1"), "{:.1%}"), _f(m.get("top5"), "{:.1%}"),
                         f"{_f(uni.get('top1'), '{:.1%}')} / {_f(uni.get('top5'), '{:.1%}')}"])
    return rows


#: the blur-cost rounds' modes: key -> what it is
COST_MODES = {"mono": "mono, blur v2 (the reference)", "mono_blur_v1": "mono, the previous blur (v1)",
              "mono_smear": "mono, blur v2 with the smear knob at 1", "linked": "linked stereo",
              "independent": "independent stereo"}


def blur_cost_section(bench: dict, name: str) -> list[str]:
    """Markdown lines: the bench's blur-cost rounds (``stereo_rtf``) as a table of RTF and column
    step per mode, and blur v2's cost against v1's (target: the column step at most x1.1); no
    lines when the bench has no such rounds."""
    sr_ = bench.get("stereo_rtf")
    if not sr_:
        return []
    rtf, q = sr_["rtf"], sr_["ratio_to_mono"]
    col, qc = sr_.get("column_us") or {}, sr_.get("column_ratio_to_mono") or {}
    from vqblur.measure.targets import COST_TARGETS

    rows = []
    for key, what in COST_MODES.items():
        if key not in rtf:
            continue
        target = COST_TARGETS.get(key) if key != "mono_blur_v1" else None  # (v1's: the verdict below)
        rows.append([what, f"{rtf[key]:.4f}", f"x{q[key]:.2f}", _f(col.get(key), "{:.0f}"),
                     f"x{qc[key]:.2f}" if key in qc else "-", f"<= {target}" if target else "-"])
    v1 = "mono_blur_v1"
    if v1 in qc:
        ratio, verdict = 1 / qc[v1], f"the column step x{1 / qc[v1]:.2f}"
    else:  # a bench file from before the column step was read: the RTF stands in
        ratio, verdict = 1 / q[v1], f"x{1 / q[v1]:.2f} by the RTF (this bench file has no column-step figures)"
    ok = ratio <= COST_TARGETS[v1]
    if "slices" in sr_:
        how = (f"one engine per mode, all streaming the timing signal in turn, slice by slice ({sr_['slices']} "
               f"slices of {1000 * sr_['slice_s']:.0f} ms), so the machine's drifts hit every mode alike; the ratios "
               "are medians of per-slice ratios to mono (blur v2)")
    else:  # bench files before 2026-12-02 04:30 UTC: a short run per mode and round
        how = (f"the modes round-robin, {sr_['rounds']} rounds, each a short run from a fresh engine; the ratios "
               "are medians of per-round ratios to mono (blur v2)")
    return ["Blur and stereo cost (" + name + ", " + sr_["knobs"] + "): " + how + ", of the real-time factor "
            "and of the column step (the engine's own timer per code column, its median: what the cost target "
            "reads, without the per-block work around it). "
            f"**Blur v2 against v1: {verdict}** ({'ok' if ok else 'missed'}; target <= {COST_TARGETS[v1]}), "
            f"the RTF x{1 / q[v1]:.2f} (docs/MEASURING.md, \"Stereo cost\").", "",
            md_table(["mode", "RTF", "RTF vs mono", "column step us", "column vs mono", "target"], rows), ""]


def write_markdown(out: Path, bench: dict, figs: dict[str, str], info: dict) -> Path:
    bs = bench["bundles"]
    b0 = bs[0]
    L: list[str] = []
    h = bench["host"]
    L += ["# vqblur report", "",
          f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `vqblur report` "
          f"(`measure/report.py`) from the bench of {bench['created']}"
          f"{' (quick run)' if bench['settings'].get('quick') else ''}.", "",
          "* bundle(s): " + ", ".join(f"`{b['path']}` ({b['precision']}, {b['bundle_mb']:.2f} MB)" for b in bs),
          f"* machine: {h['cpu']}, {h.get('usable_cpus')} usable CPUs, load average "
          f"{_f((h.get('loadavg') or [None])[0], '{:.1f}')} at bench time; Python {h['python']}, "
          f"numpy {h['numpy']}, onnxruntime {h['onnxruntime']}",
          f"* timing knobs: zone size {bench['settings']['timing_params']['zone_size']}, temperature "
          f"{bench['settings']['timing_params']['temperature']} (the blur sampler is running); "
          f"{b0['timing_audio_seconds']:.0f} s of audio per run, median of {bench['settings']['repeats']} runs",
          *[f"* quality set: {st['title']}: {st['source']} ({st['clips']} clips, {st['seconds']:.0f} s)"
            + ("" if st["comparable"] else " - **not comparable** with the README's figures; no targets checked")
            for st in b0["quality"]["sets"].values()],
          f"* training log: {info.get('run') or 'none found'}",
          "* to listen: [listen.html](listen.html), every preset on held-out real recordings, before and after", ""]
    if bench["settings"].get("quick"):
        L += ["> This report was built from a **quick** bench (short runs): the numbers are indicative only.", ""]

    L += ["## Targets (docs/MEASURING.md)", ""]
    rows = []
    for k, t0 in b0["targets"].items():
        cells = [t0.get("label", k), f"{'within ±' if t0.get('cmp') == 'abs<=' else '<= '}{_f(t0['target'], '{:g}')}"]
        for b in bs:
            t = b["targets"].get(k)
            if t is None:
                cells.append("-")
                continue
            cells.append(f"{_f(t['value'], '{:.3g}')} {'ok' if t['ok'] else ('**missed**' if t['ok'] is False else '')}")
        rows.append(cells)
    L += [md_table(["measure", "target"] + [f"{b['name']} ({b['precision']})" for b in bs], rows), ""]

    L += ["## Latency", "",
          f"Declared latency {b0['latency_samples']['declared']} samples = {b0['latency_ms']['declared']:.2f} ms "
          f"(`N - 1 + (F-1) R`); measured {_f(b0['latency_samples']['measured'], '{:.0f}')} samples = "
          f"{_f(b0['latency_ms']['measured'], '{:.2f}')} ms: {b0['latency_method']}. "
          f"Jitter (spread of the measured delay): std {b0['jitter_ms']['std']:.3f} ms, range "
          f"{b0['jitter_ms']['range']:.3f} ms. Median delay by excitation: "
          + ", ".join(f"{k} {v:.0f} samples" for k, v in b0["latency_by_excitation_samples"].items())
          + ". A spread above zero means the model itself smears some sounds in time (the output's "
          "correlation peak moves), not that the engine's buffering varies: the DSP-only engine measures "
          f"{_f(b0['baseline_dsp']['latency_samples']['measured'], '{:.0f}')} samples with jitter "
          f"{b0['baseline_dsp']['jitter_ms']['std']:.3f} ms.", "",
          f"![latency histogram](figures/{figs['latency']})", ""]

    L += ["## Compute", "",
          "Per host block: compute time against the block's duration, and deadline misses under a simulated "
          "real-time schedule (block *i* arrives at (i+1)·B/sr, starts when it has arrived and the previous "
          "block is done, misses when it finishes more than one block duration after arriving). The engine "
          "works per code column (160 samples), so small blocks are mostly free and a few carry a whole column.", ""]
    rows = []
    for B in sorted(b0["blocks"], key=int):
        cells = [B, _f(b0["blocks"][B]["block_ms"], "{:.2f}")]
        for b in bs:
            k = b["blocks"][B]
            cells += [f"{k['block_ms_p50']:.3f} / {k['block_ms_p99']:.3f} / {k['block_ms_max']:.2f}",
                      f"{k['deadline_misses']} / {k['blocks']}"]
        rows.append(cells)
    hdr = ["block", "duration ms"]
    for b in bs:
        hdr += [f"{b['name']} p50 / p99 / max ms", "misses"]
    L += [md_table(hdr, rows), "", f"![per-block compute](figures/{figs['blocks']})", ""]

    rows = []
    th = bench["settings"]["threads"]
    for b in bs:
        base = b["baseline_dsp"]
        rc = b.get("rtf_cpu", {})
        rows.append([f"{b['name']} ({b['precision']})"]
                    + [f"{_f(b['rtf'].get(str(t)), '{:.4f}')} (CPU {_f(rc.get(str(t)), '{:.4f}')})" for t in th]
                    + [_f(base["rtf"], "{:.4f}"), f"x{base['rtf_ratio']:.1f}", f"{100 * base['model_share']:.0f} %",
                       _f(b.get("preemptions_per_audio_s"), "{:.0f}")])
    L += ["Real-time factor: wall-clock engine seconds per second of audio, median of the repeats; in brackets the "
          "process's CPU seconds per audio second in the same runs (all threads). When the wall figure is well above "
          "the CPU figure the process was waiting for a core: the machine is shared (see the load average above)."
          + (" The DSP-only RTF and model / DSP come from the model's engine and the DSP-only one streaming the "
             "signal in turn, slice by slice (model / DSP: the median of the per-slice ratios)."
             if bs[0]["baseline_dsp"].get("rtf_method") else ""), "",
          md_table(["bundle"] + [f"RTF {t} thr (CPU)" for t in th]
                   + ["DSP-only RTF", "model / DSP", "model share", "preemptions / audio s"], rows), "",
          f"![RTF vs block size](figures/{figs['rtf']})", ""]
    il = bench.get("interleaved_rtf")
    if il:
        rows = [[n, " / ".join(f"{v:.4f}" for v in runs), f"{m:.4f}", f"x{r:.2f}"]
                for n, runs, m, r in zip(il["names"], il["rtf_runs"], il["rtf"], il["ratio_to_first"])]
        if "slices" in il:
            how = (f"the bundles' engines streaming the timing signal in turn, slice by slice ({il['slices']} slices "
                   f"of {1000 * il['slice_s']:.0f} ms over {il['rounds']} passes), so the shared machine's drifts "
                   "hit every bundle alike")
            hdr = ["bundle", "RTF per pass", "over all", "vs the first (median of per-slice ratios)"]
        else:  # bench files before 2026-12-02 04:30 UTC: a run per bundle and round
            how = (f"the bundles measured round-robin, {il['rounds']} rounds, so minutes when the shared machine "
                   "runs slower hit every bundle alike")
            hdr = ["bundle", "RTF per round", "median", "vs the first (median of per-round ratios)"]
        L += [f"Interleaved real-time factor (one thread, the timing knobs): {how}. "
              "Compare bundles by this table rather than by the sequential figures above.", "",
              md_table(hdr, rows), ""]
    hs = bench.get("host_stalls")
    if hs:
        from vqblur.measure.table import host_stalls_text

        text = host_stalls_text(hs)
        L += [text[0].upper() + text[1:] + "; see docs/MEASURING.md.", ""]
    parts = ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")
    cmp_rows = []
    for b in bs[1:]:
        v = b.get("vs_first")
        if v:
            cmp_rows.append([f"{b['name']} ({b['precision']}) vs {v['reference']}", _f(v["code_agreement"], "{:.1%}"),
                             _f(v["sc_db_delta"], "{:+.2f}"), _f(v["lsd_db_delta"], "{:+.2f}"),
                             f"x{_f(v['rtf_ratio'], '{:.2f}')}", f"x{_f(v.get('rtf_cpu_ratio'), '{:.2f}')}",
                             " / ".join(f"{x:.1f}" for x in v["encoder_decoder_ms_per_audio_s"].values()),
                             f"x{_f(v['bundle_mb_ratio'], '{:.2f}')}"])
    if cmp_rows:
        L += ["Side by side (same clips, same run):", "",
              md_table(["bundle", "codes agree", "SC delta dB", "LSD delta dB", "RTF ratio", "CPU ratio",
                        "enc+dec ms per audio s (ref / this)", "size ratio"], cmp_rows), ""]
    rows = [[f"{b['name']} ({b['precision']})"] + [f"{100 * b['breakdown'][p]:.0f} % ({b['breakdown_ms_per_audio_s'][p]:.1f})"
                                                  for p in parts] for b in bs]
    L += ["Where the time goes (share of the engine's own timers; in brackets ms per second of audio):", "",
          md_table(["bundle"] + list(parts), rows), ""]
    rows = []
    for b in bs:
        u = b.get("per_column_us") or {}
        o = b.get("ort_share") or {}
        m = b.get("macs_per_column") or {}
        rows.append([f"{b['name']} ({b['precision']})"] + [_f(u.get(p), "{:.0f}") for p in parts]
                    + [_f(u.get("total"), "{:.0f}"), _f(o.get("ort_run_us"), "{:.0f}"), _f(o.get("python_us"), "{:.0f}"),
                       _f(b["baseline_dsp"].get("per_column_us", {}).get("total"), "{:.0f}"),
                       _macs(m.get("encoder")), _macs(m.get("decoder"))])
    L += ["Per code column (microseconds; the engine's timers of the median timing run): the time inside "
          "onnxruntime's `run` and the rest (the Python share) come from one more run with `run` timed; "
          "multiply-accumulates per column: "
          + str((b0.get("macs_per_column") or {}).get("source", "-")) + ".", "",
          md_table(["bundle"] + list(parts) + ["total", "in ORT run", "Python", "DSP-only total",
                                               "enc MACs", "dec MACs"], rows), ""]
    rbs = [b for b in bs if b.get("rtf_by_setting")]
    if rbs:
        from vqblur.measure.table import setting_rtfs

        rows = [[f"{b['name']} ({b['precision']})", setting_rtfs(b), f"{b['rtf_by_setting']['ratio']:.2f}"]
                for b in rbs]
        how = ("the engines streaming in turn, slice by slice, with the DSP-only one; ratio: the median of "
               "the per-slice ratios" if rbs[0]["rtf_by_setting"].get("method") else
               "interleaved runs of the same bench, medians")
        L += [f"Real-time factor by knob setting (zone 0.3; {how}):", "",
              md_table(["bundle", "RTF", "ratio"], rows), ""]
    L += blur_cost_section(bench, b0["name"])

    L += ["## Memory and energy", ""]
    rows = []
    for b in bs:
        m = b.get("memory") or {}
        rows.append([f"{b['name']} ({b['precision']})", _f(b.get("peak_rss_mb"), "{:.0f}"),
                     _f(m.get("runtime_rss_mb"), "{:.0f}"), f"{b['bundle_mb']:.2f}",
                     f"{b['energy_j_per_audio_s']:.3g} ({b['energy_method']})",
                     f"{b['baseline_dsp']['energy_j_per_audio_s']:.3g}",
                     ", ".join(f"{t} thr {v:.3g}" for t, v in b["energy_by_threads"].items()),
                     _f(b.get("cpu_s_per_audio_s"), "{:.3f}")])
    L += [md_table(["bundle", "peak RSS MB", "runtime only MB", "bundle MB", "J per audio s (1 thr)",
                    "DSP-only J/s", "J/s by threads", "CPU s per audio s"], rows), "",
          f"Energy source: {b0['energy_source']}. Peak RSS: the peak resident set (VmHWM) of a fresh process that imports the engine, "
          "loads the bundle and processes audio ('runtime only': the same process before loading the bundle).", ""]
    rows = []
    for b in bs:
        t = b["training_cost"]
        rows.append([f"{b['name']}", _f(t["wall_seconds"], "{:.0f}"),
                     _f(t["wall_seconds"] / 3600 if isinstance(t["wall_seconds"], (int, float)) else None, "{:.2f}"),
                     _f(t["energy_j"], "{:.3g}"), t["energy_method"] or "-", _f(t["co2e_g"], "{:.3g}"),
                     str(t.get("steps") or "-"), str(t.get("device") or "-")])
    end = info.get("run_end")
    if end:
        from vqblur.common.energy import co2e_grams

        ej = end.get("energy_j")
        rows.append([f"run log ({info.get('run_name', 'run')})", _f(end.get("wall_seconds"), "{:.0f}"),
                     _f(end["wall_seconds"] / 3600 if isinstance(end.get("wall_seconds"), (int, float)) else None, "{:.2f}"),
                     _f(ej, "{:.3g}"), end.get("energy_method") or "-",
                     _f(co2e_grams(ej) if isinstance(ej, (int, float)) else None, "{:.3g}"),
                     str(end.get("steps") or "-"), str(end.get("device") or "-")])
    L += ["Training cost (from the bundle manifest's training metrics, and the training log's end record when given):", "",
          md_table(["source", "train s", "h", "energy J", "method", "CO2e g", "steps", "device"], rows), ""]
    notes = [f"{b['name']}: {b['training_cost']['note']}" for b in bs if b["training_cost"].get("note")]
    if end and end.get("energy_source"):
        notes.append(f"run log energy source: {end['energy_source']}")
    L += [f"* {n}" for n in notes] + ([""] if notes else [])
    L += [f"CO2e uses {b0['training_cost']['grid_source']}.", ""]

    L += ["## Quality", ""]
    rows = []
    for b in bs:
        q = b["quality"]
        for key, st in q["sets"].items():
            for lab, r in st["by_setting"].items():
                rows.append([f"{b['name']} ({b['precision']})", st["title"] + ("" if st["comparable"] else " (not comparable)"),
                             lab, str(r.get("clips", 0)), _f(r.get("sc_db"), "{:.1f}"), _f(r.get("lsd_db"), "{:.2f}"),
                             _f(r.get("lsd_db_floor100"), "{:.2f}"), _f(r.get("level_change_db"), "{:+.2f}"),
                             " / ".join(_f(v, "{:+.2f}") for v in q["sine_440"].get(lab, {}).get("by_dbfs", {}).values())])
    L += [b0["quality"]["method"] + " (`measure/quality.py`, `common/spectral.py`). Sets: "
          + "; ".join(f"{st['title']}: {st['source']}" for st in b0["quality"]["sets"].values()) + ".", "",
          "Below detail 1 the engine holds the codec's resynthesis to the input's level in each of four "
          "bands, frame by frame (what a user hears, and what the targets read); the rows "
          "whose knobs end in *codec alone (level hold off)* are the same setting with that hold off: "
          "the model on its own, comparable with bundles measured before the hold.", "",
          md_table(["bundle", "set", "knobs", "clips", "SC dB", "LSD dB (80 dB range)", "LSD dB (old, -100 dB floor)",
                    "level change dB", "440 Hz sine dB at -24 / -12 / -3 dBFS"], rows), "",
          f"![spectrograms](figures/{figs['spectrograms']})", "",
          info.get("spectro_caption", ""), "",
          f"![blur strength](figures/{figs['blur']})", "",
          b0["blur_curve_method"] + ".", ""]
    rows = []
    for b in bs:
        for lab, pts in (b.get("blur_strength") or {}).items():
            for p in pts:
                rows.append([f"{b['name']}", lab, f"{p['zone_size']:g}", _f(p["inside_db"], "{:.2f}"),
                             _f(p["outside_db"], "{:.2f}")])
    if rows:
        L += ["Blur strength: " + b0["blur_strength_method"] + ":", "",
              md_table(["bundle", "knobs", "zone size", "inside the zone dB", "outside dB"], rows), ""]

    pl = b0.get("playability") or {}
    if (pl.get("versions") or {}).get("v2"):
        from vqblur.measure.playability import format_table as playability_table

        L += ["## Playability", "",
              "Is the blur an effect a musician can play? " + pl["method"], "",
              "```", *playability_table(pl), "```", ""]
        if "playability" in figs:
            L += [f"![playability](figures/{figs['playability']})", ""]

    L += ["## Codebook", "", info.get("codebook_caption", ""), "", f"![codebook usage](figures/{figs['codebook']})", ""]

    L += ["## Naive Bayes evaluation", "",
          "Negative log-likelihood (nats per cell) and top-k accuracy of each cell's code given its neighbours, "
          "against the unigram prior P(c):", ""]
    rows = []
    for b in bs:
        rows += [[f"{b['name']}: {r[0]}"] + r[1:] for r in _nb_rows(b)]
    L += [md_table(["evaluation", "cells", "NLL", "unigram NLL", "top-1", "top-5", "unigram top-1 / top-5"], rows)
          if rows else "No NB evaluation available.", ""]
    for b in bs:  # the tempered reading's curve: how over-confident the table is at T 1
        t = (b["nb"].get("heldout") or {}).get("tempered") or {}
        if t.get("nll_nats"):
            L += [f"{b['name']}, NLL over the temperature (P ∝ exp(L / T), the bench's clips): " + ", ".join(
                f"T {T:g}: {v:.2f}" for T, v in zip(t["T"], t["nll_nats"])) + " nats/cell. Naive Bayes counts "
                "the 8 neighbours' shared evidence 8 times, so at T 1 it is over-confident.", ""]

    L += ["## Training curves", ""]
    if "training" in figs:
        L += [f"![training curves](figures/{figs['training']})", "", info.get("training_caption", ""), ""]
    else:
        L += ["No training log (`metrics.jsonl`) was found; pass `--run DIR`.", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(L) + "\n")
    return path


# ---------------------------------------------------------------------------- build


def build_report(out_dir=None, *, bench: dict | None = None, bench_path=None, run_dir=None, bundle=None,
                 clips: int = 8, quick_bench: bool = True, log: Callable[[str], None] = lambda s: None) -> Path:
    from vqblur.measure.codes import blur_codes, encode_codes
    from vqblur.measure.harness import render_aligned
    from vqblur.measure.run import BenchOptions, run_bench, strip_for_json
    from vqblur.measure.sets import gm_test_set, real_set
    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Engine, Params

    out = Path(out_dir) if out_dir is not None else default_out_dir()
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)

    if bench is None and bench_path is not None:
        bench = json.loads(Path(bench_path).read_text())
        if isinstance(bench, dict) and bench.get("vqblur_bench_version", 0) < 2:
            from vqblur.common.errors import UserError

            raise UserError(f"{bench_path}: made by an older `vqblur bench` (format "
                            f"{bench.get('vqblur_bench_version')}); run `vqblur bench --json FILE` again")
    if bench is None:
        bpath = Path(bundle) if bundle else default_bundle_path()
        log(f"running a {'quick ' if quick_bench else ''}bench on {bpath}")
        bench = strip_for_json(run_bench(BenchOptions(bundles=[bpath], quick=quick_bench,
                                                      threads=[1] if quick_bench else (1, 2), log=log)))
    bundle_path = Path(bundle) if bundle else Path(bench["bundles"][0]["path"])
    bnd = load_bundle(bundle_path)
    sr = bnd.sample_rate
    info: dict[str, Any] = {}
    figs: dict[str, str] = {}

    # training curves
    mpath = resolve_run(run_dir)
    if mpath is not None and mpath.is_file():
        recs = read_metrics(mpath)
        try:
            rel = mpath.resolve().relative_to(REPO) if REPO else mpath
        except ValueError:
            rel = mpath
        info["run"] = f"`{rel}` ({len(recs)} records)"
        if fig_training(recs, figdir / FIGURES["training"], f"training run {mpath.parent.name}"):
            figs["training"] = FIGURES["training"]
            end = [r for r in recs if r.get("event") == "end"]
            ev = [r for r in recs if r.get("event") == "eval"]
            cap = (f"Loss terms and codebook health over {max((r.get('step', 0) for r in recs), default=0)} steps: "
                   "perplexity (effective number of codes) and the share of the K codes in use, per training batch "
                   "and on the validation clips; validation SC / LSD in the last panel.")
            if ev:
                e = ev[-1]
                cap += (f" Last evaluation (step {e.get('step')}): SC {_f(e.get('sc_db'), '{:.1f}')} dB, LSD "
                        f"{_f(e.get('lsd_db'), '{:.2f}')} dB, perplexity {_f(e.get('perplexity'), '{:.0f}')}, "
                        f"codes in use {_f(e.get('codes_in_use'), '{:.0%}')}.")
            if end:
                info["run_end"] = end[-1]
                info["run_name"] = mpath.parent.name
                s = end[-1]
                cap += (f" Run: {_f(s.get('wall_seconds'), '{:.0f}')} s on {s.get('device', '?')}, "
                        f"{_f(s.get('energy_j'), '{:.3g}')} J ({s.get('energy_method', '?')}).")
            info["training_caption"] = cap
    elif run_dir is not None:
        from vqblur.common.errors import UserError

        raise UserError(f"{mpath}: no metrics.jsonl there")

    # codebook usage, spectrograms, codemaps
    log(f"encoding {clips} test clips with the bundle's encoder")
    eval_set = real_set(sr, clips)
    if not eval_set.clips:
        eval_set = gm_test_set(sr, clips, 0, render=False)
    tclips, src = eval_set.clips, eval_set.source
    enc = [encode_codes(bnd, a, return_bands=True) for _, a in tclips]
    grids = [g for g, _ in enc]
    flat_c = np.concatenate([g.reshape(-1) for g in grids])
    flat_e = np.concatenate([e.reshape(-1) for _, e in enc])
    counts = np.bincount(flat_c, minlength=bnd.codebook_size)
    # order codes by the mean input level of the cells they encode (unseen codes: overall mean),
    # so that a code grid drawn with a sequential colour map reads like a coarse spectrogram
    level = np.bincount(flat_c, weights=flat_e, minlength=bnd.codebook_size) / np.maximum(counts, 1)
    level[counts == 0] = float(flat_e.mean()) if flat_e.size else 0.0
    code_rank = np.empty(bnd.codebook_size, np.int64)
    code_rank[np.argsort(level, kind="stable")] = np.arange(bnd.codebook_size)
    fig_codebook(counts, figdir / FIGURES["codebook"], f"{bnd.root.name}: code usage on {len(tclips)} test clips")
    figs["codebook"] = FIGURES["codebook"]
    info["codebook_caption"] = (f"Codes the bundle's encoder assigns to {sum(g.size for g in grids)} cells of "
                                f"{len(tclips)} clips ({src}); left, count per code index; right, the same counts "
                                "sorted (rank-frequency, log scale) against a uniform use of the codebook.")

    name, clip = tclips[0]
    clip = clip[: int(2.5 * sr)]
    codes0 = encode_codes(bnd, clip)
    zero = render_aligned(Engine(bnd, Params(zone_size=0.0, detail=0.0), seed=0), clip)
    panels = [(f"input ({name[:28]})", clip, codes0), ("zone 0, detail 0 (reconstruction)", zero, codes0)]
    labels = []
    for pname in SPECTRO_PRESETS:
        z, t, c = preset_knobs(pname)
        y = render_aligned(Engine(bnd, Params(zone_size=z, temperature=t, centre=c, mix=1.0), seed=0), clip)
        panels.append((f"{pname}: zone {z:g}, t {t:g}, centre {c:g}", y, blur_codes(bnd, codes0, z, t, c, 0)))
        labels.append(f"{pname} (zone {z:g}, temperature {t:g}, centre {c:g})")
    if bnd.rows_macro:  # codec v2: the same zone on the macro map (scale on); its grid is the macro map
        z, t, c = preset_knobs(SPECTRO_PRESETS[1] if len(SPECTRO_PRESETS) > 1 else SPECTRO_PRESETS[0])
        y = render_aligned(Engine(bnd, Params(zone_size=z, temperature=t, centre=c, mix=1.0, scale=1.0), seed=0), clip)
        macro0 = encode_codes(bnd, clip, map_name="macro")
        panels.append((f"scale 1 (macro map): zone {z:g}, t {t:g}", y,
                       blur_codes(bnd, macro0, z, t, c, 0, map_name="macro")))
        labels.append(f"the same zone on the macro map (scale 1; its panel shows the {bnd.rows_macro}-row macro grid)")
    fig_spectrograms(panels, sr, bnd.column_samples / sr, figdir / FIGURES["spectrograms"],
                     f"{bnd.root.name}: spectrograms (top) and code grids (bottom; codes coloured by the mean "
                     "input level they encode, the blurred zone's rows between cyan lines)", code_rank=code_rank)
    figs["spectrograms"] = FIGURES["spectrograms"]
    info["spectro_caption"] = (f"Top: spectrograms (dB, 90 dB range) of the input clip, the zone-0 output at detail 0 (the codec, its band levels held) and the "
                               f"blurred output at three preset settings, fully wet, detail 1: {', '.join(labels)}. Bottom: "
                               "the code grids (rows = frequency bands, low at the bottom; one column per "
                               f"{1000 * bnd.column_samples / sr:.2f} ms): the encoder's codes, then the "
                               "streaming sampler's output for each setting (same seed as the engine). A code's "
                               "colour is its rank by the mean input level of the cells it encodes on the test "
                               "clips (dark = quiet), so a code grid reads like a coarse spectrogram; the dashed cyan "
                               "lines bound the rows where the blur changed codes, and each panel's title gives the "
                               "share of cells changed.")

    fig_blocks(bench, figdir / FIGURES["blocks"])
    figs["blocks"] = FIGURES["blocks"]
    fig_latency(bench, figdir / FIGURES["latency"])
    figs["latency"] = FIGURES["latency"]
    fig_rtf(bench, figdir / FIGURES["rtf"])
    figs["rtf"] = FIGURES["rtf"]
    fig_blur(bench, figdir / FIGURES["blur"])
    figs["blur"] = FIGURES["blur"]
    if fig_playability(bench, figdir / FIGURES["playability"]):
        figs["playability"] = FIGURES["playability"]

    (out / "bench.json").write_text(json.dumps(bench))
    return write_markdown(out, bench, figs, info)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="build report/REPORT.md")
    p.add_argument("--out", default=None)
    p.add_argument("--bench", default=None)
    p.add_argument("--run", default=None)
    p.add_argument("--bundle", default=None)
    p.add_argument("--full-bench", action="store_true")
    a = p.parse_args(argv)
    path = build_report(a.out, bench_path=a.bench, run_dir=a.run, bundle=a.bundle, quick_bench=not a.full_bench,
                        log=lambda s: print(s, file=sys.stderr))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
