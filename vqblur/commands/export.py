"""`vqblur export`: a trained checkpoint + NB table -> a verified model bundle folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint and its Naive Bayes table as a model bundle (ONNX step graphs)",
        description=(
            "Export the VQ-VAE as per-step ONNX graphs (encoder.onnx, decoder.onnx: one code "
            "column per call, explicit streaming state, opset 17, fixed shapes), copy the Naive "
            "Bayes table and write manifest.json (signal parameters, normalisation, state specs, "
            "latency, sha256 of every file, the training config and metrics). Then checks parity: "
            "the step graphs streamed with onnxruntime against the PyTorch model run offline on "
            "~10 s of audio the model did not train on (max abs log-magnitude error <= 1e-4 with "
            "the same codes; code differences counted, ties reported). Exit code 1 when an fp32 "
            "bundle fails parity."
        ),
        epilog=(
            "examples:\n"
            "  vqblur export runs/default --nb runs/default/nb_table.npz --out presets/default_bundle\n"
            "  vqblur export runs/default/model.pt --nb nb_table.npz --out /tmp/b8 --int8\n"
            "  vqblur export runs/v2 --nb runs/v2/nb_table.npz --nb-macro runs/v2/nb_macro.npz --out /tmp/v2\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="model.pt / checkpoint.pt, or a run folder (its model.pt, else checkpoint.pt)")
    p.add_argument("--nb", required=True, metavar="NB_TABLE", help="nb_table.npz from `vqblur fit-nb`")
    p.add_argument("--nb-macro", default=None, metavar="NB_TABLE",
                   help="the macro map's table (`vqblur fit-nb --map macro`); needed for a codec-v2 "
                        "model with a macro map")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle folder to write")
    p.add_argument("--int8", action="store_true",
                   help="quantise the step graphs to int8 (static, calibrated); prints speed and "
                        "quality against fp32 -- see export/INT8.md for when it pays")
    p.add_argument("--int8-parts", default="encoder,decoder", metavar="PARTS",
                   help="with --int8: which graphs to quantise, 'encoder,decoder' (default), "
                        "'decoder' (codes stay exact) or 'encoder'")
    p.add_argument("--audio", metavar="FILE",
                   help="audio for the parity check and int8 calibration (default: the rendered GM "
                        "test split if cached, else the valid split, else a synthetic signal)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of audio for parity (default 10)")
    p.add_argument("--no-parity", action="store_true", help="skip the parity check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from vqblur.common.errors import UserError
    from vqblur.export.bundle_writer import bundle_size, export_bundle, update_manifest
    from vqblur.export.parity import check_parity, default_audio, format_parity, load_audio_file
    from vqblur.training.checkpoint import load_checkpoint, resolve_checkpoint

    parts = tuple(x.strip() for x in args.int8_parts.split(",") if x.strip())
    if not parts or any(x not in ("encoder", "decoder") for x in parts):
        raise UserError(f"--int8-parts must name encoder and/or decoder, got {args.int8_parts!r}")
    if args.seconds <= 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    ckpt = resolve_checkpoint(args.checkpoint)
    model, cfg, _ = load_checkpoint(ckpt)
    if args.audio:
        audio, source = load_audio_file(args.audio, cfg.audio.sample_rate), args.audio
    else:
        audio, source = default_audio(cfg, args.seconds + (20.0 if args.int8 else 0.0))
    n_eval = int(args.seconds * cfg.audio.sample_rate)
    # int8 calibration on the audio after the parity excerpt when there is enough of it
    calib = audio[n_eval:] if len(audio) >= n_eval + 5 * cfg.audio.sample_rate else audio

    out = export_bundle(ckpt, args.nb, args.out, int8=args.int8, nb_macro_path=args.nb_macro, calibration_audio=calib if args.int8 else None,
                        int8_parts=parts)
    size = bundle_size(out)
    m = json.loads((out / "manifest.json").read_text())
    print(f"bundle: {out} ({size / 1e6:.2f} MB, {m['precision']}; "
          + ", ".join(f"{n} {(out / n).stat().st_size / 1e6:.2f} MB" for n in m["files"]) + ")")
    print(f"  {m['rows']} rows x {m['codebook_size']} codes, {m['frames_per_column']} frames per column, "
          f"latency {m['latency_samples']} samples, "
          f"{len(m['encoder']['states'])} encoder / {len(m['decoder']['states'])} decoder state tensors")
    if args.int8:
        m["export"]["int8"]["calibration_audio"] = (
            f"{source}, {'after the parity excerpt' if calib is not audio else 'same as parity'}")

    status = 0
    sections = {}
    if not args.no_parity:
        par = check_parity((model, cfg), out, audio[:n_eval],
                           seconds=args.seconds)
        par["audio"] = source
        print(format_parity(par))
        sections["parity"] = par
        if not par["passed"] and not args.int8:
            status = 1
            print("error: the fp32 bundle does not match the PyTorch model (see above)")
    if args.int8:
        from vqblur.export.quantize import compare_bundles

        ref = Path(tempfile.mkdtemp(prefix="vqblur-fp32-ref-"))
        try:
            export_bundle(ckpt, args.nb, ref / "b", nb_macro_path=args.nb_macro)
            cmp = compare_bundles(ref / "b", out, audio[:n_eval])
        finally:
            shutil.rmtree(ref, ignore_errors=True)
        print(f"int8 vs fp32 on {cmp['seconds']} s: {cmp['other_total_us']:.0f} vs "
              f"{cmp['reference_total_us']:.0f} us per column (enc+dec, 1 thread, x{cmp['speedup']:.2f}); "
              f"code agreement {100 * cmp['code_agreement']:.2f}%, log-magnitude mean abs diff "
              f"{cmp['logmag_mean_abs_diff']:.4f}; vs input: SC {cmp['other_sc_db']:.2f} dB "
              f"(fp32 {cmp['reference_sc_db']:.2f}), LSD {cmp['other_lsd_db']:.2f} dB "
              f"(fp32 {cmp['reference_lsd_db']:.2f})")
        sections["int8_vs_fp32"] = cmp
        sections["int8"] = m["export"]["int8"]
    if sections:
        update_manifest(out, **sections)
    return status
