"""Measurement (`vqblur bench`, the report, training's and export's quality figures), kept out of
the runtime: numpy + onnxruntime, never torch. It may import ``vqblur.engine``; the engine never
imports it. What it shares with training and export is on the ground floor:
the spectral measures (SC, LSD, level change, :mod:`vqblur.common.spectral`) and the energy
meters (:mod:`vqblur.common.energy`).

Modules, one per thing measured:

============  ===============================================================================
run           :func:`~vqblur.measure.run.run_bench` (orchestration), ``BenchOptions``
sets          the evaluation audio: real-recording test set, GM test split (read or rendered),
              synthetic fallback (labelled not comparable), ``--audio DIR``
harness       engines at given knobs, block loops, aligned renders, the knob settings compared
latency       declared vs measured latency, jitter (cross-correlation over random excitations)
compute       RTF, per-block / per-column compute, deadline misses, us per column, onnxruntime share
macs          multiply-accumulates per code column (manifest, or counted in the ONNX graphs)
quality       zone-0 quality per set and knob setting, sine level, blur-strength curves
codes         code grids through the bundle's encoder and the streaming sampler
nb            held-out Naive Bayes evaluation, the fit's metrics from a manifest
cost          peak RSS, bundle size, training cost (time, energy, CO2e)
targets       the targets and the check that prints them beside the figures
table         the text table `vqblur bench` prints
report        the report builder (`vqblur report`: REPORT.md and its figures)
============  ===============================================================================
"""
