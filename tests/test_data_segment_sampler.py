"""SegmentSampler: seeded, fixed-size float32 batches, prefers non-silent segments."""

from __future__ import annotations

import numpy as np
import pytest

from vqblur.common.errors import UserError
from vqblur.training.data.clips import Clip
from vqblur.training.data.corpus import SegmentSampler

SR = 48000


def _clips() -> list[Clip]:
    quiet_then_tone = np.zeros(4 * SR, np.float32)
    t = np.arange(SR // 2) / SR
    quiet_then_tone[SR // 4: SR // 4 + SR // 2] = 0.5 * np.sin(2 * np.pi * 220 * t)
    rng = np.random.default_rng(0)
    return [Clip("a", quiet_then_tone, {}),
            Clip("b", (0.1 * rng.standard_normal(2 * SR)).astype(np.float32), {})]


def test_shape_dtype_and_seeded():
    a = SegmentSampler(_clips(), 4800, seed=5).sample(8)
    b = SegmentSampler(_clips(), 4800, seed=5).sample(8)
    c = SegmentSampler(_clips(), 4800, seed=6).sample(8)
    assert a.shape == (8, 4800) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_prefers_non_silent_segments():
    s = SegmentSampler(_clips(), 4800, seed=0, min_rms_db=-60.0, retries=8)
    batch = s.sample(64)
    rms_db = 10 * np.log10(np.mean(batch.astype(np.float64) ** 2, axis=1) + 1e-20)
    assert (rms_db > -60).mean() > 0.95  # clip "a" alone is silent 7/8 of the time


def test_short_clip_is_zero_padded():
    out = SegmentSampler([np.ones(100, np.float32)], 480, seed=0).sample(2)
    assert out.shape == (2, 480)
    assert np.all(out[:, :100] == 1) and np.all(out[:, 100:] == 0)


def test_empty_corpus_is_a_user_error():
    with pytest.raises(UserError):
        SegmentSampler([], 480)
