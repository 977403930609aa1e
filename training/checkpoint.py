"""Checkpoints: one `.pt` file holding model weights, optimiser state, step and config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vqblur.common.errors import UserError
from vqblur.training.config import Config, from_dict
from vqblur.training.model import VQVAE


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A checkpoint file, or a run folder (its model.pt, else checkpoint.pt)."""
    p = Path(checkpoint).expanduser()
    if p.is_dir():
        for name in ("model.pt", "checkpoint.pt"):
            if (p / name).is_file():
                return p / name
        raise UserError(f"{p}: no model.pt or checkpoint.pt in this run folder")
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}")
    return p


def save_checkpoint(path: Path, model: VQVAE, cfg: Config, step: int, extra: dict[str, Any] | None = None) -> None:
    payload = {"model": model.state_dict(), "config": cfg.to_dict(), "step": step, **(extra or {})}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[VQVAE, Config, dict[str, Any]]:
    """-> (model in eval mode, its config, the raw checkpoint dict)."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise UserError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated / not a checkpoint
        raise UserError(f"{p}: cannot read checkpoint ({exc})") from exc
    cfg = from_dict(ckpt["config"], str(p))
    model = VQVAE(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, ckpt


def init_weights_from(model: VQVAE, checkpoint: str | Path) -> list[str]:
    """Fine-tuning start (``train.init_from``): copy into ``model`` every tensor of the checkpoint's
    model whose name and shape match; returns the names skipped for a shape that differs (e.g. a
    codec-v3 model into a codec-v4 one: the per-bin normaliser, 160 -> 640 bins; the caller
    refits what it can, the rest keeps its fresh initialisation).

    A tensor missing on either side means another architecture: a UserError naming them."""
    src, _, _ = load_checkpoint(resolve_checkpoint(checkpoint))
    theirs = src.state_dict()
    mine = model.state_dict()
    missing = [k for k in mine if k not in theirs]
    unexpected = [k for k in theirs if k not in mine]
    if missing or unexpected:
        raise UserError(f"{checkpoint}: weights do not fit this config "
                        f"(missing {missing}, unexpected {unexpected})")
    skipped = [f"{k} {list(theirs[k].shape)} -> {list(v.shape)}" for k, v in mine.items()
               if theirs[k].shape != v.shape]
    fitting = {k: t for k, t in theirs.items() if t.shape == mine[k].shape}
    model.load_state_dict(fitting, strict=False)
    return skipped
