"""PyTorch VQ-VAE -> per-step ONNX graphs + Naive Bayes table -> a verified model bundle.

API (torch and onnx are imported by the submodules, not here)::

    from vqblur.export.bundle_writer import export_bundle      # (checkpoint, nb_path, out_dir, int8=False) -> Path
    from vqblur.export.parity import check_parity               # (checkpoint, bundle_dir, audio=None, seconds=10) -> dict
    from vqblur.export.onnx_export import export_step_graphs    # (model, out_dir) -> paths + state specs
    from vqblur.export.quantize import compare_bundles, time_step_graphs

Command: ``vqblur export CHECKPOINT --nb nb_table.npz --out DIR [--int8]``; the shipped
default bundle is rebuilt with ``scripts/build_default_bundle.sh RUN_DIR``. int8 and the fp32 graph
rewrites are measured in ``export/INT8.md``.
"""
