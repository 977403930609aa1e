"""Render the bundled demo clip (presets/clips/demo.wav) from TimGM6mb, a soundfont the
default model never trained on: 6 s of guitar arpeggios over bass, a lead line and drums."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from vqblur.training.data import render_gm as rg

SR = 48000
DURATION = 6.0


def events() -> list[tuple[float, bool, int, int, int]]:
    ev: list[tuple[float, bool, int, int, int]] = []
    beat = 0.25  # 120 bpm eighth notes
    chords = [[52, 59, 64, 67, 71], [48, 55, 60, 64, 67], [50, 57, 62, 65, 69], [47, 55, 59, 62, 67]]
    t = 0.0
    for bar, chord in enumerate(chords):  # guitar arpeggio, channel 0
        for i in range(8):
            key = chord[[0, 2, 3, 4, 3, 2, 1, 2][i]]
            ev += [(t, True, 0, key, 90), (t + beat * 1.8, False, 0, key, 0)]
            t += beat * 0.75
        root = chord[0] - 12  # bass, channel 1
        start = bar * 8 * beat * 0.75
        ev += [(start, True, 1, root, 100), (start + 1.4, False, 1, root, 0)]
    lead = [(1.5, 76), (1.875, 79), (2.25, 81), (3.0, 79), (3.375, 76), (3.75, 74), (4.5, 72), (4.875, 74)]
    for start, key in lead:  # lead, channel 2
        ev += [(start, True, 2, key, 85), (start + 0.34, False, 2, key, 0)]
    for k in range(16):  # drums, channel 9: kick / hat / snare
        tt = k * 0.375
        ev += [(tt, True, 9, 42, 70), (tt + 0.1, False, 9, 42, 0)]
        if k % 4 == 0:
            ev += [(tt, True, 9, 36, 110), (tt + 0.2, False, 9, 36, 0)]
        if k % 4 == 2:
            ev += [(tt, True, 9, 38, 100), (tt + 0.2, False, 9, 38, 0)]
    return sorted(ev, key=lambda e: (e[0], e[1]))


def main(out: str = "presets/clips/demo.wav") -> None:
    rg._init_worker(str(rg.default_soundfont("test")), SR, 0.5)
    spec = rg.Spec(note_str="demo", kind="phrase", pitch=64, velocity=90, instrument=25,
                   instrument_str="demo", family="phrase",
                   programs={0: (0, 25), 1: (0, 33), 2: (0, 81), 9: (128, 0)}, events=events())
    audio = rg.render_spec(spec, DURATION)
    audio *= 0.5 / max(float(np.abs(audio).max()), 1e-6)  # -6 dBFS peak
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, SR, subtype="PCM_16")
    print(f"wrote {out}: {DURATION} s at {SR} Hz")


if __name__ == "__main__":
    main(*sys.argv[1:])
