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
