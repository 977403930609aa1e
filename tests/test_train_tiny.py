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


@pytest.mark.slow
def test_tiny_codec_v2_training_logs_every_level(tmp_path, monkeypatch):
    """The codec-v2 layout (macro map, residual levels, dropout, time context, level loss) trains:
    the loss falls, every level's perplexity and usage are logged, the eval reports the level
    error, and the start record carries the MACs per column."""
    monkeypatch.setenv("VQBLUR_DATA", str(tmp_path / "data"))
    cfg = load_config("training/configs/tiny.toml", [
        "train.steps=60", "train.lr=5e-3", "data.train_count=16", "model.rvq_levels=3",
        "model.macro_factor=4", "model.quantizer_dropout=0.3", "model.down_time_kernel=2",
        "model.res_dilations=1,3", "model.l2_normalise=false", "train.level_weight=0.2"])
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    start = records[0]
    assert start["event"] == "start" and start["macs_per_column"]["encoder"] > 0
    steps = [r for r in records if r["event"] == "step"]
    first = sum(r["loss"] for r in steps[:8]) / 8
    last = sum(r["loss"] for r in steps[-8:]) / 8
    assert last < 0.9 * first, (first, last)
    for key in ("level", "ppl_L0", "ppl_L1", "ppl_L2", "ppl_macro", "use_L2", "use_macro"):
        assert key in steps[-1], key
    ev = [r for r in records if r["event"] == "eval"][-1]
    for key in ("level_db", "perplexity_L2", "codes_in_use_macro"):
        assert key in ev, key
