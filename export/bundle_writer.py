"""Checkpoint + Naive Bayes table -> a model bundle folder (docs/ARCHITECTURE.md "Bundle").

``export_bundle(checkpoint, nb_path, out_dir, int8=False) -> Path`` writes::

    encoder.onnx  decoder.onnx  nb_table.npz  manifest.json

The bundle is assembled in a temporary folder next to ``out_dir`` and moved in at the end,
so a failed export never leaves a half-written bundle. Files of a previous bundle in
``out_dir`` (the four above) are replaced; other files there are left alone. A non-empty
``out_dir`` that is not a bundle (no manifest.json) is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vqblur.common.errors import BundleError, UserError

NB_FILE = "nb_table.npz"
NB_MACRO_FILE = "nb_macro.npz"
BUNDLE_FILES = ("manifest.json", "encoder.onnx", "decoder.onnx", NB_FILE, NB_MACRO_FILE)
# names an NB evaluation may have next to nb_table.npz (first found is recorded)
NB_EVAL_NAMES = ("{stem}_eval.json", "{stem}.eval.json", "nb_eval.json", "nb_evaluation.json",
                 "nb_metrics.json", "{stem}.json")


def run_metrics(run_dir: Path) -> dict[str, Any]:
    """summary.json and the last step/eval records of metrics.jsonl of a run folder (if any)."""
    out: dict[str, Any] = {}
    s = run_dir / "summary.json"
    if s.is_file():
        try:
            out["summary"] = json.loads(s.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    mpath = run_dir / "metrics.jsonl"
    if mpath.is_file():
        last: dict[str, dict] = {}
        for line in mpath.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                last[str(rec.get("event", "step"))] = rec
        if "eval" in last:
            out["final_eval"] = last["eval"]
        if "step" in last:
            out["final_step"] = last["step"]
    return out


def _find_nb_eval(nb_path: Path) -> tuple[str, Any] | None:
    for pattern in NB_EVAL_NAMES:
        p = nb_path.parent / pattern.format(stem=nb_path.stem)
        if p.is_file() and p != nb_path:
            try:
                return p.name, json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
    return None


def validate_nb_table(nb_path: str | Path, rows: int, K: int) -> dict[str, Any]:
    """Refuse an NB table that does not fit the model (clear BundleError naming the file).

    Checks the array shapes (``log_prior [K]``, ``log_row [rows,K]``, ``log_neigh [O,K,K]``,
    ``offsets [O,2]``), the metadata scalars ``rows``/``codebook_size`` when present, finite
    log-probabilities and integer offsets. Returns a small summary for the manifest.
    """
    from vqblur.engine.bundle import check_nb_shapes

    p = Path(nb_path)
    if not p.is_file():
        raise BundleError(f"{p}: NB table not found (make one with `vqblur fit-nb`)")
    check_nb_shapes(p, rows, K)
    with np.load(p, allow_pickle=False) as z:
        for key, want in (("rows", rows), ("codebook_size", K)):
            if key in z.files and int(np.asarray(z[key]).reshape(-1)[0]) != want:
                raise BundleError(
                    f"{p}: NB table was fitted for {key} = {int(z[key])}, the model has {want}")
        for key in ("log_prior", "log_row", "log_neigh"):
            a = z[key]
            if not np.issubdtype(a.dtype, np.floating):
                raise BundleError(f"{p}: '{key}' must be floating point, got {a.dtype}")
            if not np.isfinite(a).all():
                raise BundleError(f"{p}: '{key}' has non-finite values")
            if (a > 1e-6).any():
                raise BundleError(f"{p}: '{key}' holds values > 0 (expected log-probabilities)")
        offs = z["offsets"]
        if not np.issubdtype(offs.dtype, np.integer):
            raise BundleError(f"{p}: 'offsets' must be integers, got {offs.dtype}")
        info = {"offsets": offs.tolist(), "n_offsets": int(offs.shape[0])}
        for key in ("alpha", "n_cells"):
            if key in z.files:
                v = np.asarray(z[key]).reshape(-1)[0]
                info[key] = float(v) if key == "alpha" else int(v)
    return info


def _nb_spec(name: str, info: dict[str, Any], path: Path) -> dict[str, Any]:
    """The manifest entry of an NB table: file, validation summary, its evaluation if found."""
    spec: dict[str, Any] = {"file": name, **info}
    found = _find_nb_eval(path)
    if found:
        spec["evaluation_file"], spec["evaluation"] = found
    return spec


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from vqblur import __version__

    return {"vqblur": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise UserError(f"{out}: folder is not empty and holds no bundle; choose another --out")


def export_bundle(checkpoint: str | Path, nb_path: str | Path, out_dir: str | Path,
                  int8: bool = False, calibration_audio: np.ndarray | None = None,
                  calibration_seconds: float = 20.0, opset: int = 17,
                  int8_parts=("encoder", "decoder"), nb_macro_path: str | Path | None = None) -> Path:
    """Write a verified bundle folder; returns its path.

    Bundle format 2: the decoder graph takes a batch of streams (the engine decodes the detail
    knob's two streams in one run), ``nb_macro_path`` is the macro map's table (required when
    the model has one).

    ``int8``: quantise the step graphs named in ``int8_parts`` (static, calibrated on real
    columns in streaming order: see :mod:`vqblur.export.quantize` and export/INT8.md);
    ``calibration_audio`` (float32 at the model's rate) defaults to the rendered test/valid
    split when cached, else a synthetic signal.
    """
    from vqblur.engine.bundle import load_bundle, window_name, write_manifest
    from vqblur.export.onnx_export import (DECODER_FILE, DEFAULT_REWRITES, ENCODER_FILE, OPSET,
                                           export_step_graphs)
    from vqblur.training.checkpoint import load_checkpoint, resolve_checkpoint

    ckpt_path = resolve_checkpoint(checkpoint)
    nb_path = Path(nb_path).expanduser()
    out = Path(out_dir).expanduser()
    _prepare_out(out)
    model, cfg, ckpt = load_checkpoint(ckpt_path)
    rows, K = cfg.rows, cfg.model.codebook_size
    nb_info = validate_nb_table(nb_path, rows, K)
    macro_info = None
    if model.macro_factor:
        if nb_macro_path is None:
            raise UserError("this model has a macro map: pass its NB table too "
                            "(`vqblur fit-nb CHECKPOINT --map macro`, then export --nb-macro FILE)")
        nb_macro_path = Path(nb_macro_path).expanduser()
        macro_info = validate_nb_table(nb_macro_path, model.rows_macro, K)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-export-", dir=out.parent))
    try:
        _, _, enc_states, dec_states = export_step_graphs(model, tmp, opset=opset)
        precision = "fp32"
        quant: dict[str, Any] | None = None
        if int8:
            from vqblur.export.parity import default_audio
            from vqblur.export.quantize import quantize_step_graphs

            if calibration_audio is None:
                calibration_audio, calib_src = default_audio(cfg, calibration_seconds)
            else:
                calib_src = "given array"
            quant = quantize_step_graphs(tmp, model, cfg, calibration_audio, parts=tuple(int8_parts))
            quant["calibration_audio"] = calib_src
            precision = "int8"
        shutil.copyfile(nb_path, tmp / NB_FILE)
        if macro_info is not None:
            shutil.copyfile(nb_macro_path, tmp / NB_MACRO_FILE)

        a = cfg.audio
        training: dict[str, Any] = {
            "config": cfg.to_dict(),
            "checkpoint": {"file": ckpt_path.name, "step": int(ckpt.get("step", 0))},
        }
        run_dir = ckpt_path.parent
        metrics = run_metrics(run_dir)
        if metrics:
            training["metrics"] = metrics
        nb_spec: dict[str, Any] = {"file": NB_FILE, **nb_info}
        found = _find_nb_eval(nb_path)
        if found:
            nb_spec["evaluation_file"], nb_spec["evaluation"] = found
        from vqblur.training.model import count_macs_per_column

        macs = count_macs_per_column(model)
        manifest: dict[str, Any] = {
            "format": "vqblur-bundle",
            "format_version": 2,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sample_rate": a.sample_rate,
            "n_fft": a.n_fft,
            "hop": a.hop,
            "synthesis_len": a.synthesis_len if a.asymmetric else 0,
            "long_n_fft": int(a.long_n_fft),
            "crossover_hz": float(a.crossover_hz),
            "window": window_name(a.n_fft, a.synthesis_len, a.long_n_fft),
            "log_eps": a.log_eps,
            "model_bins": a.model_bins,
            "row_points": model.points,
            "frames_per_column": a.frames_per_column,
            "rows": rows,
            "codebook_size": K,
            "levels": model.levels,
            "rows_macro": model.rows_macro,
            "macro_factor": model.macro_factor,
            "row_warp": cfg.model.row_warp,
            "row_warp_break_hz": float(cfg.model.row_warp_break_hz),
            "macs_per_column": {"encoder": int(macs["encoder"]), "decoder": int(macs["decoder"]),
                                "encoder_plus_two_decodes": int(macs["encoder"] + 2 * macs["decoder"])},
            "latency_samples": cfg.latency_samples,
            "normalisation": {
                "mean": [float(v) for v in model.normaliser.mean.tolist()],
                "std": [float(v) for v in model.normaliser.std.tolist()],
                "inside_graphs": True,
            },
            "encoder": {"file": ENCODER_FILE, "states": [s.as_manifest() for s in enc_states]},
            "decoder": {"file": DECODER_FILE, "states": [s.as_manifest() for s in dec_states]},
            "nb": nb_spec,
            **({"nb_macro": _nb_spec(NB_MACRO_FILE, macro_info, nb_macro_path)} if macro_info is not None else {}),
            "precision": precision,
            "files": {},
            "training": training,
            "export": {"opset": max(opset, OPSET), "rewrites": dict(DEFAULT_REWRITES),
                       "versions": _versions()},
        }
        if quant:
            manifest["export"]["int8"] = quant
        write_manifest(tmp, manifest)
        load_bundle(tmp)  # the engine's own check, before anything replaces out_dir

        out.mkdir(parents=True, exist_ok=True)
        for name in BUNDLE_FILES:
            (out / name).unlink(missing_ok=True)
        for name in BUNDLE_FILES[1:] + BUNDLE_FILES[:1]:  # manifest last
            if (tmp / name).is_file():
                shutil.move(str(tmp / name), str(out / name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def update_manifest(bundle_dir: str | Path, **sections: Any) -> dict[str, Any]:
    """Merge ``sections`` into the bundle manifest's ``export`` object and rewrite it
    (hashes recomputed by ``write_manifest``)."""
    from vqblur.engine.bundle import MANIFEST_NAME, write_manifest

    root = Path(bundle_dir)
    m = json.loads((root / MANIFEST_NAME).read_text())
    m.setdefault("export", {}).update(sections)
    return write_manifest(root, m)


def bundle_size(bundle_dir: str | Path) -> int:
    """Bytes of the bundle's files (manifest included)."""
    root = Path(bundle_dir)
    return sum((root / n).stat().st_size for n in BUNDLE_FILES if (root / n).is_file())
