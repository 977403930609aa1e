"""Training data: an NSynth-like corpus rendered from GM soundfonts, and loaders for a real
NSynth download and for any folder of audio. The trainer uses :func:`load_corpus` and
:class:`SegmentSampler` only."""

from .clips import Clip, LoadReport
from .corpus import SegmentSampler, default_data_root, load_corpus

__all__ = ["Clip", "LoadReport", "SegmentSampler", "default_data_root", "load_corpus"]
