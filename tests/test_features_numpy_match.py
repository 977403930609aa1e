"""torch.stft features equal the engine's numpy maths (same framing, window, floor)."""

import numpy as np
import torch

from vqblur.training.config import AudioConfig
from vqblur.training.features import log_magnitude, numpy_log_magnitude


def test_torch_and_numpy_log_magnitudes_agree():
    cfg = AudioConfig()
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(cfg.hop * 37)).astype(np.float32)
    t = log_magnitude(torch.from_numpy(audio)[None], cfg)[0].numpy()
    n = numpy_log_magnitude(audio, cfg)
    assert t.shape == n.shape == (cfg.model_bins, 37)
    assert np.abs(t - n).max() < 1e-3
