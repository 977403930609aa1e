"""`vqblur train --resume ... --set train.KEY=VALUE`: a resumed run keeps its checkpoint's model
and audio, but its schedule can change (a lower learning rate for the rest of a long run); a
--set on the model's shape is refused with a clear error, not silently ignored."""

import json

import pytest

from vqblur.cli import main


def _steps(out):
    return [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if '"event": "step"' in l]


@pytest.mark.slow
def test_resume_with_a_lower_rate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VQBLUR_DATA", str(tmp_path / "data"))
    out = tmp_path / "run"
    common = ["--set", "data.train_count=8", "--set", "train.log_every=1", "--no-progress", "--out", str(out)]
    assert main(["train", "--config", "training/configs/tiny.toml", "--set", "train.steps=10",
                 "--set", "train.lr=5e-3", *common]) == 0
    first = _steps(out)
    assert max(r["lr"] for r in first) > 2e-3  # the first stretch ran at its own rate
    assert main(["train", "--resume", str(out / "checkpoint.pt"), "--set", "train.steps=14",
                 "--set", "train.lr=1e-3", "--no-progress", "--out", str(out)]) == 0
    resumed = [r for r in _steps(out) if r["step"] > 10]
    assert resumed and resumed[-1]["step"] == 14
    assert all(r["lr"] <= 1e-3 + 1e-12 for r in resumed)  # the new peak, not the checkpoint's 5e-3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["lr"] == pytest.approx(1e-3) and cfg["train"]["steps"] == 14
    assert cfg["data"]["train_count"] == 8  # the rest is the checkpoint's


def test_resume_refuses_a_new_shape(tmp_path, capsys):
    import torch

    from vqblur.training.config import load_config
    from vqblur.training.model import VQVAE

    cfg = load_config("training/configs/tiny.toml")
    torch.save({"config": cfg.to_dict(), "step": 3, "model": VQVAE(cfg).state_dict()}, tmp_path / "c.pt")
    rc = main(["train", "--resume", str(tmp_path / "c.pt"), "--set", "model.code_dim=4",
               "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "model" in err and "train.*" in err and "Traceback" not in err
    rc = main(["train", "--resume", str(tmp_path / "c.pt"), "--config", "training/configs/tiny.toml",
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "--config" in capsys.readouterr().err
