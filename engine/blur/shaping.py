"""Blur v2: what the decoder's change becomes before it reaches the output.

numpy only, one :class:`ChangeShaper` per stream (a channel, or linked channels' shared
analysis), per code column, in log-magnitude at the model's bins (``[F, bins]``). With
``lb = dec(b)`` (the blurred codes), ``lc = dec(c)`` (the encoder's own codes) and ``L_in`` the
input, the detail formula splits into a *base* and the blur's *change*::

    base   = lc + detail * (L_in - lc)          (detail 1: the input; 0: the codec)
    base  += h                                   (detail < 1: the codec's level held)
    change = lb - lc
    out    = base + w * smooth(change) + m * (g + c)    (then, with the smear knob: smear(out))

* ``h``: below detail 1, the base's level held to the input's, per frame in the same
  ``LEVEL_BANDS`` bands as ``g`` (below): ``h = 0.5 ln(E_in / E_base)`` on every bin of a band,
  the power ratio within ``BASE_GAIN_MIN``..``BASE_GAIN_MAX`` (-80..+20 dB). The codec alone loses or gains level on some
  material (a loud 3.5 kHz sine: 4 dB; a 440 Hz one: 1.3 dB); with ``h`` the codec's
  resynthesis (detail 0) keeps its own spectral shape inside each band and the input's level in
  each (``hold_base_level=False``: the codec's own level, for measuring the model alone).
  Detail 1 needs none (the base is the input);
* ``w [bins]``: the zone's weight per bin on the perceptual axis (:mod:`.zone`), so the change
  lies where the knobs put it, with soft edges;
* ``change`` is held within -40..+20 dB per bin (a decoder that paints loud codes into
  silence cannot), then ``smooth``: a one-pole per frame (``CHANGE_TAU`` = 70 ms): codes that
  switch crossfade instead of clicking, and the blurred band is no rougher than the input;
* ``g``: the level match, per frame. The bins are grouped into ``LEVEL_BANDS`` bands of equal
  width on the perceptual axis (four: 0-530 Hz, 0.53-2.2 kHz, 2.2-7.4 kHz, 7.4-24 kHz). Per
  band and frame (``LEVEL_TAU`` = 0: no window; a window would let a band's loudness drift
  over its length): ``T`` the energy of ``base``, ``O`` that of ``base + w * smooth(change)``
  and ``Z`` the part of ``O`` in the bins the gain acts on (weight ``m = min(1, w / 0.05)``:
  the zone, its faint outer edge only in part). The gain on those bins is
  ``G = 1 + (T - O) / Z`` (so the band's energy comes out as ``T``), ``g = 0.5 ln G``. So within
  each band the blur moves energy around and re-textures, but every frame's band is as loud as
  the base's: the blur is level-true by design, at any input level;
* ``c``: the output level loop. A spectrogram whose magnitudes were changed, resynthesised
  with the input's phases, is not quite the spectrogram of any signal: the overlap-add loses
  some energy where the change is rough in time (up to 2-3 dB on drums with a held zone). After
  each column's overlap-add the engine hands :meth:`ChangeShaper.feedback` the energy of the
  samples that column completed and of the input samples they answer; ``c`` (nats, on the
  zone's bins, ``LOOP_MIN``..``LOOP_MAX``) integrates ``LOOP_RATE`` times the log ratio of the
  two, smoothed over ``LOOP_TAU`` (20 ms), so what comes out is as loud as the base would be.
  It acts in the zone only (never on the rest of the spectrum), one column late; while the
  input is digital silence there is nothing to measure against, and ``c`` returns to 0 at the
  loop's rate (it neither cuts a tail rung into silence nor holds a boost). A boost it
  learnt on quieter material does not land whole on an onset: when a column's base energy
  rises above ``ONSET_RISE`` (2) times its recent average (smoothed as the loop's), a positive
  ``c`` is scaled down by that rise, and the loop learns afresh from there (measured on 12
  held-out recordings x 27 settings: limiter runs 8 -> 5 of 324, the levels unchanged within
  0.03 dB; a sustained glass rub cut into a snare hit at zone 1 / temperature 1: the peak before
  the limiter 1.42 -> about 1.0, of a 0.71 input).

* the **time smear** (the ``smear`` knob, off by default; ``s`` its value times the offline
  blur's ``--time`` span, smoothed as the change): after all of the above, per bin of the zone
  the output's power ``P`` moves towards its own one-pole ``Sp`` (``SMEAR_TAU`` = 150 ms) by
  ``w s``: ``P' = P + w s (Sp - P)``. Attacks soften and their energy lands in the next 150 ms,
  like a short spectral reverb limited to the zone; a one-pole keeps the sum of what it is fed,
  so a band's energy over a stretch is the unsmeared one's (level-true over a window, no longer
  frame by frame), and the loop then follows the smeared spectrogram's energy (it makes up
  what the resynthesis loses, not what the smear moves in time). A smeared tail is carried by
  the input's own phases; into digital silence (a one-shot with a zeroed end) the engine's
  analysis carries each bin's phase on from its last frame while the smear is up
  (``StreamingStft.carry_phase``), so the tail rings on (it falls about 30 dB a second).

With the zone shut (all weights 0), or once the change has died away (below ``CHANGE_SNAP``,
at most ``CHANGE_TAU`` x ln(4.6 / 3e-4) = 0.68 s after the codes agree again), the output is
``base`` exactly (the loop starts afresh): detail 1 and zone 0 give the input back; with the
smear at 0 the output is exactly the engine's without it. ``apply`` allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

CHANGE_TAU = 0.070  # s, one-pole on the decoder's change
LEVEL_TAU = 0.0  # s, the window the band levels are matched over (0: every frame on its own)
LEVEL_BANDS = 4  # bands of equal width on the perceptual axis
_EPS = 1e-30
GAIN_EDGE = 0.05  # zone weight from which the level gain acts in full
GAIN_FLOOR = 1e-8  # the level gain never cuts more than 80 dB
CHANGE_MIN, CHANGE_MAX = -4.6, 2.3  # nats: the change per bin is held within -40..+20 dB
CHANGE_SNAP = 3e-4  # nats (0.003 dB): a releasing change below this is zero
LOOP_RATE = 0.3  # the output level loop's step per column, of its log level error
LOOP_TAU = 0.020  # s, the loop's energy smoothing
LOOP_MIN, LOOP_MAX = -0.35, 1.5  # nats: the loop's correction, -3..+13 dB on the zone's bins
ONSET_RISE = 2.0  # a column whose base energy exceeds this times the recent average is an onset
BASE_GAIN_MIN, BASE_GAIN_MAX = -18.4, 4.6  # nats of power: the base's level hold, -80..+20 dB
SMEAR_TAU = 0.150  # s, the time smear (the ``smear`` knob): a one-pole on the zone's power
SMEAR_FLOOR = -250.0  # nats: the smear's floor for a log-magnitude (exp(-500) is far from underflow)


def band_matrix(position: np.ndarray, bands: int = LEVEL_BANDS) -> np.ndarray:
    """Bands of equal width on axis positions ``position [bins]`` (0..1): [bands, bins] of 0/1,
    each bin in exactly one band (so matching each band's energy is exact)."""
    idx = np.minimum((np.asarray(position) * bands).astype(int), bands - 1)
    out = np.zeros((bands, len(position)))
    out[idx, np.arange(len(position))] = 1.0
    return out


def _two_step(a: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A one-pole ``s += a (x - s)`` over ``frames`` steps in closed form:
    ``S = M @ X + c (x) s0`` -> (M [F, F], c [F])."""
    M = np.zeros((frames, frames))
    for i in range(frames):
        for j in range(i + 1):
            M[i, j] = a * (1.0 - a) ** (i - j)
    c = (1.0 - a) ** np.arange(1, frames + 1)
    return M, c


class ChangeShaper:
    """The blur's change made placed, smooth and level-true; see the module docstring."""

    def __init__(self, frames: int, position: np.ndarray, frame_rate: float,
                 change_tau: float = CHANGE_TAU, level_tau: float = LEVEL_TAU,
                 bands: int = LEVEL_BANDS, loop: bool = True, smear_tau: float = SMEAR_TAU,
                 hold_base_level: bool = True):
        bins = len(position)
        self.frames, self.bins = int(frames), bins
        self._bands = band_matrix(np.asarray(position, np.float64), bands)  # [NB, bins]
        F, NB = self.frames, bands
        # the change's one-pole over the column in one product: S = [c | M] @ [s0; d]
        Mc, cc = _two_step(1.0 - math.exp(-1.0 / (change_tau * frame_rate)), frames)
        self._Mc_aug = np.concatenate([cc[:, None], Mc], axis=1)  # [F, F + 1]
        self._level_window = level_tau > 0.0
        if self._level_window:  # the band energies smoothed per frame over level_tau
            Ml, cl = _two_step(1.0 - math.exp(-1.0 / (level_tau * frame_rate)), frames)
            self._Ml, self._cl = Ml, cl[:, None]  # [F, F]; [F, 1]
            self._Es = np.zeros((F, 2 * NB + 1))
            self._Et = np.zeros((F, 2 * NB + 1))
        self._e0 = np.zeros((1, 2 * NB + 1))  # smoothed energies after the last frame
        #: the output level loop (:meth:`feedback`); off: ``c`` stays 0
        self.loop = bool(loop)
        self._loop_a = 1.0 - math.exp(-float(frames) / (LOOP_TAU * frame_rate))  # per column
        #: the time smear (``smear_tau`` 0: none); its amount is smoothed per column
        self._smear = smear_tau > 0.0
        if self._smear:
            self._Ms, self._cs = _two_step(1.0 - math.exp(-1.0 / (smear_tau * frame_rate)), frames)
        self._amount_a = 1.0 - math.exp(-float(frames) / (change_tau * frame_rate))  # per column
        self._P = np.zeros((F, bins))  # the output's powers, then smeared
        self._Sp = np.zeros((F, bins))  # their one-pole
        self._sp0 = np.zeros(bins)  # the one-pole after the last frame
        self._wa = np.zeros(bins)  # w x the smoothed amount
        self._cm = np.zeros(bins)  # the loop's correction on the zone's bins (c x m)
        self._w = np.zeros(bins)
        self._m = np.zeros(bins)  # where the level gain acts: min(1, w / GAIN_EDGE)
        # the band energies of a frame's powers [base | out] ([F, 2 bins]) in one product:
        # [T - O + Z | Z | the base's total], T / O the base's / output's energy per band, Z the
        # part of O in the bins the gain acts on (so G = (T - O + Z) / Z)
        # (and a last row for a constant 1 that adds _EPS to Z)
        self._W = np.zeros((2 * bins + 1, 2 * NB + 1))
        self._W[:bins, 2 * NB] = 1.0
        self._W[2 * bins, NB : 2 * NB] = _EPS
        self._gain_bins = np.zeros((NB, bins))  # 0.5 x bands x m: a band's log-gain onto its bins
        self._D = np.zeros((F + 1, bins))  # [the smoothed change after the last frame; the column's change]
        self._s0, self._d = self._D[0], self._D[1:]
        self._S = np.zeros((F, bins))  # smoothed change
        self._tmp = np.zeros((F, bins))
        self._Y = np.zeros((F, bins))  # base + change (log-magnitude)
        self._X1 = np.ones((F, 2 * bins + 1))  # powers of [base, base + change], then a 1, per frame
        self._X2 = self._X1[:, : 2 * bins]
        self._X = self._X2.reshape(F, 2, bins)  # (a view: rows of X1 are contiguous but for the 1)
        self._E = np.zeros((F, 2 * NB + 1))  # see _W
        self._g = np.zeros((F, NB))
        self._gk = np.zeros((F, bins))
        #: below detail 1, the base's level held to the input's per band and frame (``h``)
        self.hold_base_level = bool(hold_base_level)
        self._Xh = np.zeros((F, 2 * bins))  # powers of [base, input] per frame
        self._Wh = np.zeros((2 * bins, 2 * NB))  # -> [the base's | the input's energy per band]
        self._Wh[:bins, :NB] = self._bands.T
        self._Wh[bins:, NB:] = self._bands.T
        self._Eh = np.zeros((F, 2 * NB))
        self._h = np.zeros((F, NB))
        self._half_bands = 0.5 * self._bands  # a band's log power gain onto its bins, as log-magnitude
        self._in_power = 0.0  # the input's total power in the last held column
        self.is_open = False
        self._ratio = 1.0  # the base's energy over the input's in the last column (detail < 1)
        self._silent = True  # nothing has come through since a start from silence
        self.reset(silent=True)

    def reset(self, silent: bool = False) -> None:
        """A fresh start of the change, levels, loop and smear. ``silent``: the stream itself
        starts (the engine's reset: silence before it), so the smear's one-pole starts from 0;
        otherwise (a zone opening, a release) from the next frame's power, as if the sound had
        been steady before."""
        if silent:
            self._silent = True
        self._sp_fresh = not self._silent
        self._sp0[:] = 0.0
        self._s0[:] = 0.0
        self._e0[:] = 0.0
        self.correction = 0.0  # c, nats on the zone's bins
        self._loop_out = self._loop_ref = 0.0  # smoothed output / reference energy per column
        self._base_avg = 0.0  # the base's energy per frame, smoothed as the loop's (onsets)
        self._prev_out = self._prev_in = 0.0  # the last column's smeared / input energies
        self._amount = -1.0  # the smear's amount, smoothed (-1: fresh, it starts at the next one)
        self.active = False  # the last apply changed the output (the loop listens only then)

    def set_zone(self, weight: np.ndarray) -> None:
        """The zone's weight per bin (``PerceptualZone.bin_weight``); call when it changes."""
        opening = not self.is_open
        self._w[:] = weight
        self.is_open = bool(self._w.any())
        np.minimum(self._w / GAIN_EDGE, 1.0, out=self._m)
        NB, bins = self._bands.shape
        W, Bm = self._W, self._bands.T * self._m[:, None]  # [bins, NB]
        W[:bins, :NB] = self._bands.T  # + T
        W[bins : 2 * bins, :NB] = Bm - self._bands.T  # - O + Z
        W[bins : 2 * bins, NB : 2 * NB] = Bm  # Z
        np.multiply(self._bands, 0.5 * self._m[None, :], out=self._gain_bins)
        if self.is_open and opening:  # a fresh start: no stale change, levels or loop
            self.reset()

    def apply(self, lb: np.ndarray, lc: np.ndarray, lin: np.ndarray, detail: float,
              out: np.ndarray, smear: float = 0.0) -> np.ndarray:
        """``lb``, ``lc``, ``lin`` -> ``out`` (all ``[F, bins]``), in place; see the module doc.
        ``smear`` (0..1): how much the zone is smeared in time in this column (the ``smear``
        knob, times the offline blur's ``--time`` span with its soft edge), smoothed here."""
        self._silent = False
        if detail == 1.0:  # base = lc + detail * (lin - lc): the input itself at detail 1
            base = lin
        else:
            base = np.subtract(lin, lc, out=out)
            out *= detail
            out += lc
            if self.hold_base_level:
                self._hold_level(base, lin)
        self.active = False
        if not self.is_open:
            if base is not out:
                np.copyto(out, base)
            return out
        F, NB = self.frames, self._g.shape[1]
        d, S = self._d, self._S
        np.subtract(lb, lc, out=d)
        np.minimum(d, CHANGE_MAX, out=d)  # (two ufuncs: np.clip's Python wrapper costs more)
        np.maximum(d, CHANGE_MIN, out=d)
        d *= self._w
        np.matmul(self._Mc_aug, self._D, out=S)  # smoothed change, frame by frame
        if self._smear:  # the amount, smoothed as the change (a span's edge fades, not cuts)
            if self._amount < 0.0:
                self._amount = smear
            else:
                self._amount += self._amount_a * (smear - self._amount)
            if smear <= 0.0 and self._amount < CHANGE_SNAP:
                self._amount = 0.0
                self._prev_out = self._prev_in = 0.0
        if (not np.count_nonzero(d) and self._amount <= 0.0
                and np.abs(S, out=self._tmp).max() < CHANGE_SNAP):
            self.reset()  # released: the change ends exactly, levels and loop start afresh
            if base is not out:
                np.copyto(out, base)
            return out  # the input (base) itself
        self._s0[:] = S[-1]
        Y, X = self._Y, self._X
        np.add(base, S, out=Y)  # base + change
        np.multiply(base, 2.0, out=X[:, 0])
        np.multiply(Y, 2.0, out=X[:, 1])
        np.exp(self._X2, out=self._X2)
        E = self._E
        np.matmul(self._X1, self._W, out=E)  # [T - O + Z | Z (+ eps) | base total] per frame
        if self._level_window:  # smoothed per frame (linear in the powers: T, O, Z alike)
            Es = self._Es
            np.matmul(self._Ml, E, out=Es)
            np.multiply(self._cl, self._e0, out=self._Et)
            Es += self._Et
            self._e0[:] = Es[-1:]
        else:
            Es = E
        smearing = self._smear and self._amount > 0.0  # (the smear sets the loop's reference)
        if detail != 1.0 and self.loop and not smearing:  # the reference: the base's level, not the input's
            e_in = self._in_power if self.hold_base_level else self._power_sum(lin)  # (held: known)
            self._ratio = float(E[:, 2 * NB].sum()) / (e_in + _EPS)
        else:
            self._ratio = 1.0
        g = self._g  # G = 1 + (T - O) / Z, at least GAIN_FLOOR
        np.divide(Es[:, :NB], Es[:, NB : 2 * NB], out=g)
        np.maximum(g, GAIN_FLOOR, out=g)
        np.log(g, out=g)
        c = self.correction
        if self.loop:
            t_col = float(E[:, 2 * NB].sum()) / F  # the base's energy per frame in this column
            rise = ONSET_RISE * self._base_avg
            if c > 0.0 and t_col > rise > 0.0:
                # a rising input (an onset): the boost was learnt on the quieter past, so it
                # shrinks with the rise instead of landing on the onset whole (the loop then
                # learns afresh from there)
                c *= rise / t_col
                self.correction = c
            self._base_avg += self._loop_a * (t_col - self._base_avg)
        if c != 0.0:  # + c on the zone's bins (the bands' gain bins sum to m / 2)
            g += 2.0 * c
        np.matmul(g, self._gain_bins, out=self._gk)  # [F, bins]
        np.add(Y, self._gk, out=out)
        if smearing:
            self._smear_time(out, lin, c)
        self.active = True
        return out

    def _hold_level(self, base: np.ndarray, lin: np.ndarray) -> None:
        """``base [F, bins]`` (log-magnitude, in place) + ``h``: each band of each frame as loud as
        the input's ``lin [F, bins]`` (see the module doc); digital silence in gives the most
        cut, not a division by zero."""
        NB, bins = self._h.shape[1], self.bins
        X = self._Xh
        np.multiply(base, 2.0, out=X[:, :bins])
        np.multiply(lin, 2.0, out=X[:, bins:])
        np.exp(X, out=X)
        self._in_power = float(X[:, bins:].sum())  # the input's total power (the loop's reference reads it)
        E, h = self._Eh, self._h
        np.matmul(X, self._Wh, out=E)  # [base | input] energy per band and frame
        E += _EPS
        np.divide(E[:, NB:], E[:, :NB], out=h)
        np.log(h, out=h)
        np.minimum(h, BASE_GAIN_MAX, out=h)
        np.maximum(h, BASE_GAIN_MIN, out=h)
        np.matmul(h, self._half_bands, out=self._tmp)
        base += self._tmp

    def _power_sum(self, logmag: np.ndarray) -> float:
        """The total power of log-magnitudes ``[F, bins]``: sum of exp(2 logmag) (in ``_tmp``)."""
        np.multiply(logmag, 2.0, out=self._tmp)
        np.exp(self._tmp, out=self._tmp)
        return float(self._tmp.sum())

    def _smear_time(self, out: np.ndarray, lin: np.ndarray, c: float) -> None:
        """The time smear, in place on ``out [F, bins]`` (log-magnitudes, the loop's ``c``
        included): per bin, the zone's power ``P`` moves towards its one-pole ``Sp``
        (``smear_tau``) by ``w x amount``, so an attack softens and its energy lands just after
        it. A one-pole keeps the sum of what it is fed, so a band's energy over a stretch of
        columns is the unsmeared one's (a one-shot's smear needs its tail). The loop's reference
        follows the smeared spectrogram's energy over the input's, over this column and the last
        (the samples a column completes come from both): the loop makes up what the
        resynthesis loses, not the energy the smear moves in time."""
        P, Sp, wa, cm = self._P, self._Sp, self._wa, self._cm
        np.multiply(self._m, c, out=cm)  # the smear reads the level-matched output, before c
        # digital silence (|X| = 1e-300, -690 nats) is floored to SMEAR_FLOOR: its power would
        # underflow to 0 and the ratio below divide by it
        np.add(cm, SMEAR_FLOOR, out=self._wa)
        np.maximum(out, self._wa, out=out)
        np.subtract(out, cm, out=P)
        P *= 2.0
        np.exp(P, out=P)
        if self._sp_fresh:
            self._sp0[:] = P[0]
            self._sp_fresh = False
        np.matmul(self._Ms, P, out=Sp)
        np.multiply.outer(self._cs, self._sp0, out=self._tmp)
        Sp += self._tmp
        self._sp0[:] = Sp[-1]
        # the change in log-magnitude, 0.5 ln(1 + w a (Sp / P - 1)): exactly 0 where w a is 0
        Sp /= P
        Sp -= 1.0
        np.multiply(self._w, self._amount, out=wa)
        Sp *= wa
        if self.loop:  # the smeared powers' sum, P (1 + ...), and the input's
            np.multiply(P, Sp, out=self._tmp)
            e_out = float(P.sum()) + float(self._tmp.sum())
            e_in = self._power_sum(lin)
            self._ratio = (e_out + self._prev_out) / (e_in + self._prev_in + _EPS)
            self._prev_out, self._prev_in = e_out, e_in
        np.log1p(Sp, out=Sp)
        Sp *= 0.5
        out += Sp

    def feedback(self, energy_out: float, energy_in: float) -> None:
        """After the column's overlap-add: the energy of the output samples it completed and of
        the input samples they answer (summed over the channels this stream feeds). Moves the
        loop's correction ``c`` for the next column (see the module doc); nothing while the last
        :meth:`apply` left the output alone."""
        if not (self.active and self.loop):
            return
        a = self._loop_a
        if energy_in <= 0.0:  # digital silence in: nothing to measure against, the loop lets go
            self.correction -= a * self.correction
            return
        self._loop_out += a * (energy_out - self._loop_out)
        self._loop_ref += a * (self._ratio * energy_in - self._loop_ref)
        if self._loop_out > 0.0 and self._loop_ref > 0.0:
            c = self.correction + LOOP_RATE * 0.5 * math.log(self._loop_ref / self._loop_out)
            self.correction = min(max(c, LOOP_MIN), LOOP_MAX)
