#!/usr/bin/env python3
"""Make the 10-minute test folder of docs/OWN_SOUNDS.md from a Debian package.

The package is ``pushover-data`` (the music of the puzzle game Pushover: ten theme tracks,
Ogg Vorbis, 44.1 kHz stereo, GPL), installed with ``apt-get install pushover-data``; its tracks
are under /usr/share/pushover/themes. The default model never heard them: its training data are
GM renders (FluidR3, MuseScore General) and the train split of sonic-pi-samples and
hydrogen-drumkits (vqblur.common.recordings; other packaged audio stays out of training).

Writes one minute from the middle of each track (the intro skipped) as Ogg Vorbis, 44.1 kHz
stereo, into FOLDER: ten files, 10.0 minutes.

    python scripts/own_sounds_folder.py /tmp/pushover-10min
    vqblur make-bundle /tmp/pushover-10min --out /tmp/pushover-bundle
"""

from __future__ import annotations

import sys
from pathlib import Path

THEMES = Path("/usr/share/pushover/themes")
SECONDS = 60.0


def main(argv: list[str]) -> int:
    import soundfile as sf

    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[0])
    tracks = sorted(THEMES.glob("*.ogg"))
    if not tracks:
        print(f"no tracks in {THEMES}: apt-get install pushover-data", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for t in tracks:
        x, sr = sf.read(str(t), dtype="float32", always_2d=True)
        n = int(SECONDS * sr)
        s = max(0, (len(x) - n) // 2)
        piece = x[s:s + n]
        # in blocks: libsndfile's Vorbis encoder crashes on one very large write
        with sf.SoundFile(str(out / t.name), "w", sr, piece.shape[1], format="OGG", subtype="VORBIS") as f:
            for i in range(0, len(piece), sr):
                f.write(piece[i:i + sr])
        total += len(piece) / sr
        print(f"{t.name}: {len(piece) / sr:.1f} s from {s / sr:.1f} s of {len(x) / sr:.1f} s")
    print(f"{out}: {len(tracks)} files, {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
