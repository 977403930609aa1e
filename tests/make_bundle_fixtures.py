"""Small things the make-bundle tests share: a tiny folder of audio in mixed formats, rates and
channel counts (made from packaged sonic-pi samples, or synthesised when they are missing), and a
tiny codec-v2 base model with its bundle (random weights: quick to fine-tune and to export)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SONIC_PI = Path("/usr/share/sonic-pi/samples")
REPO = Path(__file__).resolve().parents[1]

# (source sample, destination, rate, channels): about 52 s of audio in six formats
FOLDER_FILES = (
    ("loop_amen_full.flac", "a/amen.wav", 48000, 2),
    ("guit_em9.flac", "guitar.ogg", 22050, 2),
    ("loop_tabla.flac", "b/c/tabla.flac", 44100, 2),
    ("ambi_glass_hum.flac", "hum_16k_mono.wav", 16000, 1),
    ("loop_safari.flac", "safari.aiff", 32000, 2),
    ("guit_e_fifths.flac", "x y/guitar fifths.mp3", 44100, 2),
)

TINY_MODEL = {
    "model": {"channels": [8, 12, 16], "res_blocks": 1, "time_kernel": 2, "res_dilations": [1],
              "down_time_kernel": 2, "code_dim": 8, "codebook_size": 32, "l2_normalise": False,
              "rvq_levels": 2, "macro_factor": 4, "quantizer_dropout": 0.3},
    "vq": {"restart_every": 5},
    "data": {"segment_frames": 16},
    "train": {"batch_size": 4, "threads": 1, "lr": 2e-3, "level_weight": 0.2, "seed": 0},
}


def _synth(seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = 110 * 2 ** rng.integers(0, 24, size=8) / 12
    x = sum(np.sin(2 * np.pi * fi * t + rng.uniform(0, 6)) for fi in f) / 8
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2
    return (0.3 * x * env + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_folder(root: Path, extras: bool = True) -> Path:
    """The test folder: six audio files (wav 48 kHz stereo, ogg 22.05 kHz, flac 44.1 kHz in a
    sub-sub-folder, wav 16 kHz mono, aiff 32 kHz, mp3 44.1 kHz), plus (``extras``) a text file, a broken wav
    and a silent wav, which are skipped."""
    import soundfile as sf
    import soxr

    root.mkdir(parents=True, exist_ok=True)
    for i, (src, dst, sr, ch) in enumerate(FOLDER_FILES):
        if (SONIC_PI / src).is_file():
            x, r = sf.read(str(SONIC_PI / src), always_2d=True, dtype="float32")
        else:
            x, r = _synth(9.0, 44100, i)[:, None], 44100
        x = x.mean(1, keepdims=True) if ch == 1 else (np.repeat(x, 2, 1) if x.shape[1] == 1 else x)
        if sr != r:
            x = soxr.resample(x, r, sr)
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        if dst.endswith(".ogg") or dst.endswith(".mp3"):  # in blocks (libsndfile's encoders)
            fmt = "OGG" if dst.endswith(".ogg") else "MP3"
            with sf.SoundFile(str(root / dst), "w", sr, x.shape[1], format=fmt) as f:
                for j in range(0, len(x), sr):
                    f.write(x[j:j + sr])
        else:
            sf.write(str(root / dst), x, sr)
    if extras:
        (root / "notes.txt").write_text("not audio\n")
        (root / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav file")
        sf.write(str(root / "silence.wav"), np.zeros(48000, np.float32), 48000)
    return root


def make_base(root: Path) -> tuple[Path, Path]:
    """A tiny random-weight codec-v2 model: (checkpoint, bundle). The normaliser is fitted on a
    few seconds of the test audio so the codes are spread."""
    import torch

    from vqblur.export.bundle_writer import export_bundle
    from vqblur.training.checkpoint import save_checkpoint
    from vqblur.training.config import from_dict
    from vqblur.training.features import log_magnitude
    from vqblur.training.model import VQVAE
    from vqblur.training.nb_fit import fit_nb, save_nb_table

    root.mkdir(parents=True, exist_ok=True)
    cfg = from_dict(TINY_MODEL)
    torch.manual_seed(0)
    model = VQVAE(cfg)
    x = torch.from_numpy(_synth(4.0, cfg.audio.sample_rate, 7))[None]
    with torch.no_grad():
        model.normaliser.fit(log_magnitude(x, cfg.audio))
    ckpt = root / "model.pt"
    save_checkpoint(ckpt, model, cfg, 0)
    rng = np.random.default_rng(0)
    K = cfg.model.codebook_size
    nb = save_nb_table(root / "nb_table.npz", fit_nb([rng.integers(0, K, (cfg.rows, 200))], K))
    nbm = save_nb_table(root / "nb_macro.npz", fit_nb([rng.integers(0, K, (cfg.rows // 4, 200))], K))
    bundle = export_bundle(ckpt, nb, root / "bundle", nb_macro_path=nbm)
    return ckpt, bundle


def run_cli(args: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, "-m", "vqblur.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), env=env, **kw)
