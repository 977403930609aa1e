"""A fine-tune (train.init_from) keeps the starting model's normalisation statistics unless
train.refit_normaliser; with a stopping rule it evaluates its starting weights at step 0 (so
best.pt may be them), and the hooks' own validation figures join each evaluation."""

from __future__ import annotations

import json

import numpy as np
import torch

from tests.make_bundle_fixtures import TINY_MODEL, _synth


def _setup(tmp_path):
    import soundfile as sf

    from vqblur.training.checkpoint import save_checkpoint
    from vqblur.training.config import from_dict
    from vqblur.training.model import VQVAE

    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(2):
        sf.write(str(folder / f"x{i}.wav"), 3.0 * _synth(3.0, 48000, i), 48000)  # louder than the base's stats
    cfg = from_dict(TINY_MODEL)
    torch.manual_seed(0)
    base = VQVAE(cfg)
    ckpt = tmp_path / "base.pt"
    save_checkpoint(ckpt, base, cfg, 0)
    d = cfg.to_dict()
    d["data"].update(source="folder", path=str(folder), workers=1)
    d["train"].update(init_from=str(ckpt), steps=3, eval_every=2, checkpoint_every=2, eval_examples=2,
                      patience=3, patience_metric="figure", mel_weight=0.1)
    return base, d


class _Hooks:
    def __init__(self):
        self.evals = []

    def started(self, step, wall):
        pass

    def stepped(self, step, wall):
        pass

    def validate(self, model):
        return {"figure": 1.0 if not self.evals else 0.5}  # the start is beaten at once

    def evaluated(self, step, metrics, patience):
        self.evals.append((step, metrics["figure"], dict(patience)))


def test_fine_tune_keeps_or_refits_the_normaliser(tmp_path):
    from vqblur.training.config import from_dict
    from vqblur.training.train import train

    base, d = _setup(tmp_path)
    means = {}
    for refit in (False, True):
        d["train"]["refit_normaliser"] = refit
        out = tmp_path / f"run_{refit}"
        hooks = _Hooks()
        train(from_dict(d), out, progress=False, hooks=hooks)
        state = torch.load(out / "model.pt", weights_only=False)["model"]
        means[refit] = state["normaliser.mean"].numpy()
        # step 0 is evaluated (the starting weights), then every 2 steps and at the end
        assert [s for s, _, _ in hooks.evals] == [0, 2, 3]
        assert hooks.evals[0][2]["best_step"] == 0 and hooks.evals[1][2]["best_step"] == 2
        records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["figure"] for r in records if r["event"] == "eval"] == [1.0, 0.5, 0.5]
        assert all("mel" in r for r in records if r["event"] == "step")
    np.testing.assert_array_equal(means[False], base.normaliser.mean.numpy())
    assert np.abs(means[True] - base.normaliser.mean.numpy()).max() > 0.1
