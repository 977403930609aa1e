"""Fine-tuning (train.init_from): it keeps the starting model's normalisation statistics unless
train.refit_normaliser; with a stopping rule it evaluates its starting weights at step 0 (so
best.pt may be them), and the hooks' own validation figures join each evaluation; the weight
average (train.weight_ema) is what is evaluated and saved; the stopping rule's best checkpoint
and its patience count."""

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


def test_weight_average_is_what_is_evaluated_and_saved(tmp_path):
    """train.weight_ema: best.pt and model.pt hold the averaged weights, checkpoint.pt the live
    ones and the average (a resume continues both)."""
    from vqblur.training.config import from_dict
    from vqblur.training.train import train

    base, d = _setup(tmp_path)
    d["train"].update(weight_ema=0.5, lr=1e-2)
    out = tmp_path / "run"
    train(from_dict(d), out, progress=False, hooks=_Hooks())
    final = torch.load(out / "model.pt", weights_only=False)
    live = torch.load(out / "checkpoint.pt", weights_only=False)
    names = [n for n, _ in base.named_parameters()]
    assert len(live["weight_ema"]) == len(names)
    for name, e in zip(names, live["weight_ema"]):
        torch.testing.assert_close(final["model"][name], e)
    moved = [n for n in names if not torch.equal(final["model"][n], live["model"][n])]
    assert moved  # the average lags the live weights
    # buffers (normaliser, codebooks' EMA state) are the live ones in both
    torch.testing.assert_close(final["model"]["normaliser.mean"], live["model"]["normaliser.mean"])
    # step 2's best.pt is the average at step 2, not the starting weights
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["step"] == 2 and any(not torch.equal(best["model"][n], base.state_dict()[n]) for n in names)


def test_stopping_rule_keeps_the_best_figure(tmp_path):
    """best.pt follows the best figure however small its lead; only an improvement by
    train.patience_min_delta resets the count of evaluations towards train.patience."""
    from vqblur.training.config import from_dict
    from vqblur.training.train import train

    _, d = _setup(tmp_path)
    d["train"].update(steps=20, eval_every=1, checkpoint_every=1, patience=3, patience_min_delta=0.01)
    figures = iter([1.0, 0.9, 0.898, 0.897, 0.896, 0.5, 0.5])

    class Scripted(_Hooks):
        def validate(self, model):
            return {"figure": next(figures)}

    hooks = Scripted()
    summary = train(from_dict(d), tmp_path / "run", progress=False, hooks=hooks)
    assert summary["stop_reason"] == "patience"
    assert [s for s, _, _ in hooks.evals] == [0, 1, 2, 3, 4, 5]  # stopped after step 4's evaluation
    assert summary["patience"]["best_step"] == 4 and summary["patience"]["best"] == 0.896
    assert summary["patience"]["mark"] == 0.9 and summary["patience"]["bad_evals"] == 3
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["step"] == 4
