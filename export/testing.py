"""Small helpers for the export tests (and smoke checks): a tiny untrained checkpoint, a test
signal and a Naive Bayes table of the documented shapes. No training needed: one forward in
train mode initialises the codebook by k-means from the encoder's outputs, which is enough
for the export/parity machinery (it checks the graphs, not the model's quality).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vqblur.engine.blur import OFFSETS_8

#: the engine's 8-neighbourhood (declared once, :data:`vqblur.engine.blur.OFFSETS_8`), as an array
EIGHT_NEIGHBOURS = np.array(OFFSETS_8, dtype=np.int64)


def harmonic_signal(seconds: float, sample_rate: int = 48000, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic test signal: gliding harmonic tones with note onsets, decays,
    a little noise and a few silent gaps (so codes change and the states matter). float32 [n]."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    note = 0.5  # seconds per note
    for start in np.arange(0.0, seconds, note):
        i0, i1 = int(start * sample_rate), min(n, int((start + note) * sample_rate))
        if rng.random() < 0.12:  # a silent gap
            continue
        tt = t[i0:i1] - start
        f0 = 55.0 * 2 ** (rng.integers(0, 48) / 12) * (1 + 0.02 * tt)  # slight glide
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        env = np.exp(-tt * rng.uniform(2.0, 8.0)) * np.minimum(1.0, tt / 0.005)
        tone = np.zeros_like(tt)
        for h in range(1, 12):
            if h * f0[0] > sample_rate / 2.2:
                break
            tone += rng.uniform(0.2, 1.0) / h * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        out[i0:i1] += env * tone
    out += 0.003 * rng.standard_normal(n)
    out *= 0.5 / max(1e-9, np.abs(out).max())
    return out.astype(np.float32)


#: the codec-v2 layout in small: macro map (5 rows), 3 residual micro levels, dilated time context
TINY_V2 = {"rvq_levels": 3, "macro_factor": 4, "down_time_kernel": 2, "res_dilations": [1, 3],
           "code_dim": 8, "l2_normalise": False}


#: codec v4's framing (asymmetric windows: 641 bins 37.5 Hz apart, latency of a 320 frame) and
#: its warp (640 model bins onto 160 points: 20 rows with 3 scales); pass as ``audio=TINY_V4_AUDIO,
#: **TINY_V4_MODEL``
TINY_V4_AUDIO = {"n_fft": 1280, "synthesis_len": 320, "model_bins": 640}
TINY_V4_MODEL = {"row_warp": "log", "row_points": 160}

#: codec v5's split framing (the 1280 window's 40 bins below 1.5 kHz, the 320 window's 150 above:
#: 190 model bins onto 160 points, 20 rows with 3 scales; latency 399); pass as
#: ``audio=TINY_V5_AUDIO, **TINY_V5_MODEL``
TINY_V5_AUDIO = {"n_fft": 320, "long_n_fft": 1280, "crossover_hz": 1500.0, "model_bins": 190}
TINY_V5_MODEL = {"row_warp": "log", "row_points": 160}


def tiny_config(channels=(8, 12, 16), codebook_size: int = 32, audio: dict | None = None, **model):
    """A tiny Config: ``model`` overrides ModelConfig fields, ``audio`` AudioConfig fields."""
    from vqblur.training.config import Config, validate

    cfg = Config()
    cfg.model.channels = list(channels)
    cfg.model.codebook_size = int(codebook_size)
    for k, v in model.items():
        setattr(cfg.model, k, v)
    for k, v in (audio or {}).items():
        setattr(cfg.audio, k, v)
    cfg.train.batch_size = 2
    validate(cfg)
    return cfg


def make_tiny_checkpoint(path: str | Path, channels=(8, 12, 16), codebook_size: int = 32,
                         seed: int = 0, run_folder: bool = True, audio: dict | None = None,
                         **model) -> Path:
    """Write an untrained tiny model (normaliser fitted, codebook k-means initialised);
    ``model`` overrides ModelConfig fields (e.g. ``**TINY_V2``), ``audio`` AudioConfig fields
    (e.g. ``TINY_V4_AUDIO``).

    ``path`` is a folder (a run folder: model.pt + config.json, and with ``run_folder`` a
    metrics.jsonl / summary.json like a training run leaves). Returns the checkpoint path.
    """
    import json

    import torch

    from vqblur.training.checkpoint import save_checkpoint
    from vqblur.training.features import log_magnitude
    from vqblur.training.model import VQVAE

    torch.manual_seed(seed)
    cfg = tiny_config(channels, codebook_size, audio, **model)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    model = VQVAE(cfg)
    audio = torch.from_numpy(np.stack([harmonic_signal(1.0, cfg.audio.sample_rate, seed + i)
                                       for i in range(2)]))
    lm = log_magnitude(audio, cfg.audio)
    T = lm.shape[2] - lm.shape[2] % cfg.audio.frames_per_column
    lm = lm[:, :, :T]
    model.normaliser.fit(lm)
    model.train()
    with torch.no_grad():
        model(lm)  # k-means codebook init (+ one EMA update)
    model.eval()
    ckpt = root / "model.pt"
    save_checkpoint(ckpt, model, cfg, step=1)
    if run_folder:
        (root / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        (root / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
        (root / "summary.json").write_text(json.dumps({"steps": 1, "tiny": True}) + "\n")
    return ckpt


def uniform_nb_table(path: str | Path, rows: int, K: int, offsets=EIGHT_NEIGHBOURS) -> Path:
    """A Laplace-uniform NB table of the documented shapes (ARCHITECTURE.md)."""
    offs = np.asarray(offsets, dtype=np.int64)
    O = len(offs)
    np.savez(
        path,
        log_prior=np.full(K, -np.log(K), np.float32),
        log_row=np.full((rows, K), -np.log(rows), np.float32),
        log_neigh=np.full((O, K, K), -np.log(K), np.float32),
        offsets=offs,
        alpha=np.float32(1.0),
        n_cells=np.int64(0),
        codebook_size=np.int64(K),
        rows=np.int64(rows),
    )
    return Path(path)


def make_nb_table(path: str | Path, rows: int, K: int, seed: int = 0) -> Path:
    """An NB table fitted on random codemaps with ``training.nb_fit`` when it exists,
    else a Laplace-uniform table of the same shapes."""
    try:
        from vqblur.training.nb_fit import fit_nb, save_nb_table
    except ImportError:
        return uniform_nb_table(path, rows, K)
    rng = np.random.default_rng(seed)
    maps = [rng.integers(0, K, size=(rows, 30)) for _ in range(3)]
    table = fit_nb(maps, K, EIGHT_NEIGHBOURS, 1.0)
    save_nb_table(table, path) if _takes_table_first(save_nb_table) else save_nb_table(path, table)
    return Path(path)


def _takes_table_first(fn) -> bool:
    import inspect

    params = list(inspect.signature(fn).parameters)
    return bool(params) and params[0] not in ("path", "out", "out_path", "file", "filename")


def as_format1(bundle_dir: str | Path) -> Path:
    """Rewrite an exported one-level bundle's manifest as bundle format 1 (what the export wrote
    before codec v2: no levels / macro keys, the decoder run one stream at a time), in place.

    The decoder graph keeps its dynamic batch axis, which a format-1 reader never uses; tests
    use this to check that format-1 bundles still load and run."""
    import json

    from vqblur.engine.bundle import MANIFEST_NAME, write_manifest

    root = Path(bundle_dir)
    m = json.loads((root / MANIFEST_NAME).read_text())
    if m.get("levels", 1) != 1 or m.get("rows_macro", 0):
        raise ValueError("only a one-level bundle without a macro map can be format 1")
    for key in ("levels", "rows_macro", "macro_factor", "macs_per_column", "nb_macro"):
        m.pop(key, None)
    m["format_version"] = 1
    write_manifest(root, m)
    return root
