#!/usr/bin/env python
"""Per-column compute against model size: how the step graphs' time scales with MACs.

    .venv/bin/python scripts/compute_frontier.py [--reps 5] [--json report/frontier.json]

For each row (the shipped default's layout with other widths / depths), an untrained model
with codebook K = 256 is exported with today's rewrites (timing does not depend on the weights)
and its encoder step, one decoder stream and the batch-2 decode (the detail knob) are timed in
onnxruntime, one thread, bound buffers, interleaved between rows (min over ``--reps`` of the
median of 200 runs, so a noisy neighbour on a shared VM hurts every row alike). Beside them:
the engine's parts that do not depend on the model, timed the same way (the DSP-only engine:
STFT, overlap-add, FIFOs, mix; and one micro blur step at zone 0.3), so that each row's
``floor`` is what a column costs with that model and nothing else slower than today.

Prints a Markdown table (docs/MEASURING.md quotes it). The shipped bundle's own graphs are
timed as the first row.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROWS: list[tuple[str, dict]] = [
    ("32/48/64, 2 res blocks, 4 levels", dict(channels=(32, 48, 64))),
    ("32/48/64, 1 res block", dict(channels=(32, 48, 64), res_blocks=1, res_dilations=[3])),
    ("24/32/48, 2 res blocks (lite)", dict(channels=(24, 32, 48))),
    ("24/32/48, 2 res blocks, 3 levels", dict(channels=(24, 32, 48), rvq_levels=3)),
    ("24/32/48, 1 res block", dict(channels=(24, 32, 48), res_blocks=1, res_dilations=[3])),
    ("16/24/32, 2 res blocks", dict(channels=(16, 24, 32))),
]
BASE = dict(rvq_levels=4, macro_factor=4, down_time_kernel=2, res_dilations=[1, 3], code_dim=16,
            l2_normalise=False, res_blocks=2)


def _median_us(fn, n: int = 200) -> float:
    import numpy as np

    ts = np.empty(n)
    pc = time.perf_counter
    for i in range(n):
        a = pc()
        fn()
        ts[i] = pc() - a
    return float(np.median(ts) * 1e6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", default=None, help="write the rows as JSON here")
    a = ap.parse_args()

    import numpy as np

    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.codec import IdentityCodec, OnnxCodec
    from vqblur.engine.core import Engine, Params
    from vqblur.engine.dsp import SignalConfig
    from vqblur.export.bundle_writer import export_bundle
    from vqblur.export.testing import make_tiny_checkpoint

    shipped = load_bundle(default_bundle_path())
    tmp = Path(tempfile.mkdtemp(prefix="vqblur-frontier-"))
    bundles = [("shipped default bundle", shipped)]
    for i, (name, kw) in enumerate(ROWS):
        model = dict(BASE)
        model.update({k: v for k, v in kw.items() if k != "channels"})
        ckpt = make_tiny_checkpoint(tmp / f"run{i}", channels=kw["channels"], codebook_size=256, **model)
        out = export_bundle(ckpt, shipped.nb_path, tmp / f"bundle{i}", nb_macro_path=shipped.nb_macro_path)
        bundles.append((name, load_bundle(out)))
        print(f"exported {name}", file=sys.stderr)

    codecs = [OnnxCodec(b, threads=1) for _, b in bundles]
    # the model-independent parts: the DSP-only engine per column, and one blur step
    cfg = SignalConfig.from_bundle(shipped)
    dsp = Engine(IdentityCodec(cfg), Params())
    block = (0.1 * np.random.default_rng(0).standard_normal(160)).astype(np.float32)
    blur = Engine(shipped, Params()).samplers[0]  # the engine's own CodeBlur for this bundle
    clean = np.random.default_rng(1).integers(0, shipped.codebook_size, shipped.n_codes)
    blurred = np.zeros_like(clean)
    parts = {"dsp": [], "blur": []}
    times = [[[], [], []] for _ in codecs]
    for _ in range(a.reps):
        for k, c in enumerate(codecs):
            for j, fn in enumerate((lambda: c._enc.run(0), lambda: c._dec1[0].run(0),
                                    lambda: c._dec2.run(0))):
                for _ in range(50):
                    fn()
                times[k][j].append(_median_us(fn))
        parts["dsp"].append(_median_us(lambda: dsp.process(block)))  # 160 samples = one column
        parts["blur"].append(_median_us(lambda: blur.step(clean, blurred, 0.3, 0.5, 0.5)))
    dsp_us, blur_us = min(parts["dsp"]), min(parts["blur"])
    column_us = 1e6 * shipped.frames_per_column * shipped.hop / shipped.sample_rate
    rows = []
    print(f"DSP-only engine {dsp_us:.0f} us per column, one blur step {blur_us:.0f} us "
          f"(a column lasts {column_us:.0f} us)\n")
    print("| model | MACs enc / dec | enc + 2 dec MACs | encoder us | decoder us (1 / 2 streams) "
          "| enc + 2 dec us | floor RTF |")
    print("|---|---|---|---|---|---|---|")
    for (name, b), t in zip(bundles, times):
        enc, d1, d2 = (min(v) for v in t)
        macs = json.loads((b.root / "manifest.json").read_text()).get("macs_per_column", {})
        floor = (dsp_us + blur_us + enc + d2) / column_us
        row = {"model": name, "macs": macs, "encoder_us": enc, "decoder1_us": d1, "decoder2_us": d2,
               "floor_rtf": floor}
        rows.append(row)
        me, md = macs.get("encoder", 0) / 1e6, macs.get("decoder", 0) / 1e6
        print(f"| {name} | {me:.2f} M / {md:.2f} M | {me + 2 * md:.2f} M | {enc:.0f} | {d1:.0f} / {d2:.0f} "
              f"| {enc + d2:.0f} | {floor:.3f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"dsp_us": dsp_us, "blur_us": blur_us, "column_us": column_us,
                                            "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
