"""The ground floor (``vqblur.common``): what every layer may import, and which imports no other
part of vqblur. Plain Python and numpy only: no torch, no onnxruntime, no audio devices.

============  ===============================================================================
errors        ``UserError``, ``BundleError``, ``PresetError`` (the CLI prints them as one line)
progress      progress bars shown on a terminal only
recordings    the packaged real recordings and their fixed train/test split
spectral      the spectral quality measures (SC, LSD, level change), shared by training,
              export, the bench and the report
freqaxis      the model's row warp and the knobs' perceptual frequency axis
energy        energy meters (RAPL / NVML / CPU-time estimate) and CO2e, for training's cost
              and the bench's
============  ===============================================================================
"""
