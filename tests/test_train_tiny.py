"""A tiny training run on rendered GM notes: the loss falls, and the run folder is complete."""

import json

import pytest

from vqblur.training.config import load_config
from vqblur.training.train import train


@pytest.mark.slow
def test_tiny_training_loss_falls(tmp_path, monkeypatch):
    monkeypatch.setenv("VQBLUR_DATA", str(tmp_path / "data"))
    cfg = load_config("training/configs/tiny.toml", ["train.steps=60", "train.lr=5e-3", "data.train_count=16"])
    out = tmp_path / "run"
    summary = train(cfg, out, progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    first = sum(r["loss"] for r in steps[:8]) / 8
    last = sum(r["loss"] for r in steps[-8:]) / 8
    assert last < 0.85 * first, (first, last)
    for key in ("l1", "sc", "commitment", "perplexity", "usage"):
        assert key in steps[-1]
    assert any(r["event"] == "eval" for r in records)
    assert summary["steps"] == 60
    assert summary["energy_method"] in ("measured", "estimated") and summary["energy_j"] > 0
    for name in ("model.pt", "checkpoint.pt", "config.json", "summary.json"):
        assert (out / name).exists()


@pytest.mark.slow
def test_resume_continues_from_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("VQBLUR_DATA", str(tmp_path / "data"))
    cfg = load_config("training/configs/tiny.toml", ["train.steps=10", "data.train_count=8"])
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    import torch

    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    ckpt["config"]["train"]["steps"] = 16
    torch.save(ckpt, out / "checkpoint16.pt")
    summary = train(cfg, out, resume=out / "checkpoint16.pt", progress=False)  # the checkpoint's config wins
    assert summary["steps"] == 16
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines() if '"step"' in l and '"event": "step"' in l]
    assert steps[-1] == 16 and 10 in steps
