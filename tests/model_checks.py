"""Shared by the codec-framing tests (v4, v5): a tiny model's shapes offline and streaming,
init_from a v3-shaped checkpoint, a tiny exported bundle."""

from __future__ import annotations

from pathlib import Path

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
