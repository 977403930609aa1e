"""Shared by the codec-framing tests (v4, v5): a tiny model's shapes offline and streaming,
init_from a v3-shaped checkpoint and a one-step fine-tune from it, a tiny exported bundle, its
parity with the model and copies of it with an edited manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch


def export_tiny_bundle(root, audio: dict | None = None, **model) -> tuple[Path, Path]:
    """A tiny codec-v2 checkpoint on the framing ``audio`` (e.g. ``TINY_V5_AUDIO``) with its two
    NB tables, exported: ``(checkpoint, bundle folder)`` under ``root``."""
    from vqblur.export.bundle_writer import export_bundle
    from vqblur.export.testing import TINY_V2, make_nb_table, make_tiny_checkpoint

    root = Path(root)
    ckpt = make_tiny_checkpoint(root / "run", audio=audio, **TINY_V2, **model)
    nb = make_nb_table(root / "nb_table.npz", rows=20, K=32)
    nbm = make_nb_table(root / "nb_macro.npz", rows=5, K=32)
    return ckpt, export_bundle(ckpt, nb, root / "bundle", nb_macro_path=nbm)


def check_graphs_match_the_model(ckpt: Path, bundle: Path) -> None:
    """The exported step graphs streamed against the PyTorch model on 1 s of a harmonic signal:
    the export's parity check passes, no code differs but at ties."""
    from vqblur.export.parity import check_parity
    from vqblur.export.testing import harmonic_signal

    p = check_parity(ckpt, bundle, harmonic_signal(1.0, 48000, seed=3), seconds=1.0)
    assert p["max_abs_err_logmag"] <= 1e-4 and p["codes_differ_not_ties"] == 0 and p["passed"], p


def edited_bundle(bundle: Path, tmp_path: Path, **changes) -> Path:
    """A copy of ``bundle`` under ``tmp_path / "edited"`` whose manifest has ``changes`` (a key
    set to None is removed), re-hashed, so only the edited fields can make it fail to load."""
    from vqblur.engine.bundle import MANIFEST_NAME, write_manifest

    out = tmp_path / "edited"
    shutil.copytree(bundle, out)
    m = json.loads((out / MANIFEST_NAME).read_text())
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    write_manifest(out, m)
    return out


def fine_tune_from_v3(tmp_path: Path, audio: dict, model: dict, **train) -> tuple[Path, dict]:
    """One training step (lr 1e-7) of a tiny model on the framing ``audio`` (and ``model``
    options), started from a codec-v3-shaped tiny checkpoint, on two 2 s clips of tones and
    noise; ``train`` sets more ``cfg.train`` fields. -> (the v3 checkpoint, the run's
    ``model.pt`` weights); the run folder is ``tmp_path / "run"``."""
    import soundfile as sf

    from vqblur.export.testing import TINY_V2, make_tiny_checkpoint, tiny_config
    from vqblur.training.train import train as run_training

    v3 = make_tiny_checkpoint(tmp_path / "v3", run_folder=False, **TINY_V2, row_warp="log")
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(2 * 48000) / 48000
    for i in range(2):
        x = 0.3 * np.sin(2 * np.pi * (80 + 40 * i) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(str(folder / f"x{i}.wav"), x.astype(np.float32), 48000)
    cfg = tiny_config(audio=audio, **TINY_V2, **model)
    cfg.data.source, cfg.data.path, cfg.data.workers, cfg.data.segment_frames = "folder", str(folder), 1, 8
    t_ = cfg.train
    t_.init_from, t_.steps, t_.lr, t_.lr_min, t_.threads = str(v3), 1, 1e-7, 1e-7, 1
    t_.eval_every, t_.checkpoint_every, t_.eval_examples = 1, 1, 1
    for k, v in train.items():
        setattr(t_, k, v)
    run_training(cfg, tmp_path / "run", progress=False)
    return v3, torch.load(tmp_path / "run" / "model.pt", weights_only=False)["model"]


def check_shapes_offline_and_streaming(m, bins: int, points: int = 160) -> None:
    """``m`` (a tiny VQVAE with ``bins`` model bins warped onto ``points``): its warp, normaliser
    and state shapes; a forward pass; and streaming one column at a time from zero states gives
    the offline codes and output."""
    assert (m.bins, m.points, m.rows, m.rows_macro) == (bins, points, 20, 5)
    assert tuple(m.warp_in.shape) == (points, bins) and tuple(m.warp_out.shape) == (bins, points)
    assert tuple(m.normaliser.mean.shape) == (bins,)
    assert all(s[2] in (160, 80, 40, 20) for s in m.encoder_state_shapes())  # heights of the points' axis
    lm = torch.randn(2, bins, 12) - 4.0
    y, _ = m.train()(lm)
    assert y.shape == (2, bins, 12)
    m.eval()
    codes = m.encode_all(lm)
    assert codes.micro.shape == (2, 3, 20, 6) and codes.macro.shape == (2, 5, 6)
    dec = m.decode_all(codes)
    assert dec.shape == (2, bins, 12)
    enc = [torch.zeros(s) for s in m.encoder_state_shapes()]
    decs = [torch.zeros(s) for s in m.decoder_state_shapes()]
    with torch.no_grad():
        for c in range(6):
            col = lm[:1, :, 2 * c:2 * c + 2].transpose(1, 2)  # [1, F, bins]
            micro, macro, enc = m.encoder_step(col, enc)
            assert torch.equal(micro[0], codes.micro[0, :, :, c]) and torch.equal(macro[0], codes.macro[0, :, c])
            out, decs = m.decoder_step(micro, macro, decs)
            assert out.shape == (1, 2, bins)
            torch.testing.assert_close(out[0].T, dec[0, :, 2 * c:2 * c + 2], atol=1e-4, rtol=1e-4)


def check_init_from_v3(m, tmp_path, bins: int) -> None:
    """``init_from`` a codec-v3-shaped tiny checkpoint into ``m`` (``bins`` model bins): every
    tensor but the per-bin normaliser is copied; the normaliser is skipped, reported, and left
    as it was (the run refits it on its data)."""
    from vqblur.export.testing import TINY_V2, make_tiny_checkpoint
    from vqblur.training.checkpoint import init_weights_from

    v3 = make_tiny_checkpoint(tmp_path / "v3", run_folder=False, **TINY_V2, row_warp="log")
    src = torch.load(v3, weights_only=False)["model"]
    fresh_mean = m.normaliser.mean.clone()
    skipped = init_weights_from(m, v3)
    assert skipped == [f"normaliser.mean [160] -> [{bins}]", f"normaliser.std [160] -> [{bins}]"]
    state = m.state_dict()
    copied = [k for k in state if not k.startswith("normaliser.")]
    assert len(copied) > 20
    for k in copied:
        assert torch.equal(state[k], src[k]), k
    assert torch.equal(m.normaliser.mean, fresh_mean)
