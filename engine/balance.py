"""Linked stereo's channel balance below detail 1: each channel's level per band, relative to the
shared analysis the blur and the codec ran on.

Linked stereo codes and decodes one stream, the channels' power mean ``P_mid = mean_ch P_ch``
(per bin and frame), and at detail 1 gives every channel its own per-bin difference
``L_ch - L_mid``. At detail 0 the codec's resynthesis of the mid replaces the input's fine
structure, and without a balance every channel would play the mid: a source panned 20 dB to the
left came out 17 dB louder on the right. ``B_ch = 0.5 ln(E_ch / E_mid)`` per band and frame
(``E`` a band's power, ``BALANCE_BANDS`` bands of equal width on the perceptual axis) puts each
channel's band back at its own level, so the image is the input's band by band while the texture
is the codec's; the engine adds ``(1 - detail) * B_ch`` to each channel (``out_ch = out_mid +
detail (L_ch - L_mid) + (1 - detail) B_ch``). Since ``E_mid`` is the channels' mean, the gains
only share the mid's power out (``mean_ch exp(2 B_ch) = 1``): they move no total level.
"""

from __future__ import annotations

import numpy as np

from vqblur.engine.blur.shaping import BASE_GAIN_MIN, band_matrix

BALANCE_BANDS = 8  # bands of equal width on the perceptual axis (about an octave each above 1 kHz)
_EPS = 1e-30


class ChannelBalance:
    """``B [C, F, bins]`` (log-magnitude offsets) from the channels' powers ``[C, F, bins]``;
    preallocated, no allocation per call."""

    def __init__(self, channels: int, frames: int, position: np.ndarray, bands: int = BALANCE_BANDS):
        b = band_matrix(np.asarray(position, np.float64), bands)  # [NB, bins]
        self._to_bands = np.ascontiguousarray(b.T)  # [bins, NB]
        self._half = 0.5 * b  # a band's log power ratio onto its bins, as log-magnitude
        self._e = np.zeros((channels, frames, bands))
        self._e_mid = np.zeros((frames, bands))
        self.offset = np.zeros((channels, frames, b.shape[1]))  # B, the last one computed

    def compute(self, power: np.ndarray) -> np.ndarray:
        """``power [C, F, bins]`` (each channel's |X|^2) -> ``B [C, F, bins]`` (``self.offset``)."""
        e = self._e
        np.matmul(power, self._to_bands, out=e)  # each channel's band powers
        e += _EPS
        np.mean(e, axis=0, out=self._e_mid)
        np.divide(e, self._e_mid, out=e)
        np.log(e, out=e)
        np.maximum(e, BASE_GAIN_MIN, out=e)  # a silent channel's band: cut by at most 80 dB, as the level hold
        np.matmul(e, self._half, out=self.offset)
        return self.offset
