"""The training loop: seeded, resumable, single process or DistributedDataParallel (torchrun).

Writes into the run folder: `config.toml`-equivalent `config.json` (the config actually
used), `metrics.jsonl` (one JSON object per logged step and per evaluation),
`checkpoint.pt` (latest, for --resume), `model.pt` (final) and `summary.json`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from vqblur.common.spectral import log_spectral_distance_db, spectral_convergence_db
from vqblur.training.checkpoint import save_checkpoint
from vqblur.training.config import RESUMABLE_TABLES, Config, apply_overrides, from_dict, validate
from vqblur.common.energy import EnergyMeter, co2e_grams
from vqblur.training.features import log_magnitude
from vqblur.training.model import VQVAE


def _setup_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def state_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of every parameter and buffer, to check DDP replicas stay identical."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def segment_samples(cfg: Config) -> int:
    """Audio samples per training segment: segment_frames hops plus one window of history (the
    long window's in the split framing)."""
    from vqblur.training.features import history_samples

    return cfg.data.segment_frames * cfg.audio.hop + history_samples(cfg.audio)


_MEL_LOSSES: dict[tuple, Any] = {}


def _mel_loss(cfg: Config, device: torch.device):
    from vqblur.training.mel_loss import MelLoss

    a = cfg.audio
    key = (a.sample_rate, a.n_fft, a.model_bins, a.long_n_fft, a.crossover_hz, str(device))
    if key not in _MEL_LOSSES:
        _MEL_LOSSES[key] = MelLoss(a.sample_rate, a.n_fft, a.model_bins,
                                   layout=a.split_layout()).to(device)
    return _MEL_LOSSES[key]


def losses(model: VQVAE, logmag: torch.Tensor, cfg: Config) -> dict[str, torch.Tensor]:
    """logmag [B, bins, T] -> dict of loss terms (and 'loss', their weighted sum)."""
    core = model.module if isinstance(model, DistributedDataParallel) else model
    recon, fo = model(logmag)
    vq = fo.vq
    target = core.normaliser(logmag)
    l1 = (recon - target).abs().mean()
    pred_logmag = core.normaliser.inverse(recon)
    pred_mag = torch.exp(pred_logmag)
    ref_mag = torch.exp(logmag)
    sc = (torch.linalg.vector_norm(ref_mag - pred_mag, dim=(1, 2)) / torch.linalg.vector_norm(ref_mag, dim=(1, 2)).clamp_min(1e-6)).mean()
    # level: per-frame log energy (the log-magnitude L1 alone lets spectral peaks sink)
    e_pred = torch.log(pred_mag.pow(2).sum(1) + 1e-6)
    e_ref = torch.log(ref_mag.pow(2).sum(1) + 1e-6)
    level = (e_pred - e_ref).abs().mean()
    t = cfg.train
    loss = (t.l1_weight * l1 + t.sc_weight * sc + t.level_weight * level
            + cfg.vq.commitment * fo.commitment + cfg.vq.codebook_weight * vq.codebook_loss)
    out = {"loss": loss, "l1": l1, "sc": sc, "level": level, "commitment": fo.commitment,
           "codebook": vq.codebook_loss, "perplexity": vq.perplexity, "usage": vq.usage}
    if t.mel_weight:  # the card's mel-LSD on the model's STFT (training/mel_loss.py)
        mel = _mel_loss(cfg, logmag.device)(pred_logmag, logmag)
        out["loss"] = loss + t.mel_weight * mel
        out["mel"] = mel
    for i, (ppl, use) in enumerate(fo.level_stats):
        tag = f"L{i}" if i < core.levels else "macro"
        out[f"ppl_{tag}"] = torch.tensor(ppl)
        out[f"use_{tag}"] = torch.tensor(use)
    return out


@torch.no_grad()
def evaluate(model: VQVAE, logmags: list[torch.Tensor], K: int) -> dict[str, float]:
    """Magnitude-domain reconstruction quality and code usage on held-out clips."""
    model.eval()
    scs, lsds, levels = [], [], []
    L = model.levels
    hists = np.zeros((L + (1 if model.macro_factor else 0), K))
    for lm in logmags:
        codes = model.encode_all(lm[None])
        rec = model.decode_all(codes)[0]
        ref = torch.exp(lm).numpy()
        est = torch.exp(rec).numpy()
        scs.append(spectral_convergence_db(ref, est))
        lsds.append(log_spectral_distance_db(ref, est))
        levels.append(10 * np.log10((est.astype(np.float64) ** 2).sum() / max((ref.astype(np.float64) ** 2).sum(), 1e-12)))
        for level in range(L):
            hists[level] += np.bincount(codes.micro[0, level].flatten().numpy(), minlength=K)
        if model.macro_factor:
            hists[L] += np.bincount(codes.macro.flatten().numpy(), minlength=K)
    model.train()

    def ppl(h: np.ndarray) -> float:
        p = h / max(h.sum(), 1)
        nz = p[p > 0]
        return float(np.exp(-(nz * np.log(nz)).sum()))

    out = {"sc_db": float(np.median(scs)), "lsd_db": float(np.median(lsds)),
           "level_db": float(np.median(levels)),
           "perplexity": ppl(hists[0]), "codes_in_use": float((hists[0] > 0).mean())}
    for i in range(1, len(hists)):
        tag = f"L{i}" if i < L else "macro"
        out[f"perplexity_{tag}"] = ppl(hists[i])
        out[f"codes_in_use_{tag}"] = float((hists[i] > 0).mean())
    return out


def _lr(step: int, cfg: Config, time_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay over whichever budget ends first: steps or max_minutes."""
    t = cfg.train
    warm = min(100, max(t.steps // 20, 1))
    if step < warm:
        return t.lr * (step + 1) / warm
    progress = min(max((step - warm) / max(t.steps - warm, 1), time_fraction), 1.0)
    return t.lr_min + 0.5 * (t.lr - t.lr_min) * (1 + math.cos(math.pi * progress))


def _rank0_first(rank: int, load: Callable[[], Any]) -> Any:
    """Run `load` on rank 0 first (it may render or fill a cache), then on the other ranks."""
    if rank == 0:
        out = load()
    if dist.is_initialized():
        dist.barrier()
    if rank != 0:
        out = load()
    return out


def _load_data(cfg: Config, rank: int):
    from vqblur.training.data.corpus import SegmentSampler, load_corpus

    if cfg.data.source == "mix":
        from vqblur.training.data.mix import load_mix

        return _rank0_first(rank, lambda: load_mix(cfg))
    if cfg.data.source == "packed":  # one compact file (vqblur pack-data): numpy alone
        from vqblur.training.data.packed import load_packed

        return load_packed(cfg)
    path = cfg.data.path or None
    sr, seed = cfg.audio.sample_rate, cfg.train.seed
    render = {"count": cfg.data.train_count, "workers": cfg.data.workers}
    train_clips, report = _rank0_first(rank, lambda: load_corpus(
        cfg.data.source, path, "train", sr, seed=seed, render_kwargs=render))
    valid_split = "valid" if cfg.data.source in ("gm", "nsynth") else "train"
    valid_render = {"workers": cfg.data.workers}  # the split's default size, shared with fit-nb
    valid_path = (cfg.data.valid_path or path) if cfg.data.source == "folder" else path
    valid_clips, _ = _rank0_first(rank, lambda: load_corpus(
        cfg.data.source, valid_path, valid_split, sr, limit=cfg.train.eval_examples, seed=seed,
        render_kwargs=valid_render))
    return train_clips, report, valid_clips, SegmentSampler


def train(cfg: Config, out_dir: str | Path, resume: str | Path | None = None, progress: bool = True,
          hooks: Any = None, resume_overrides: list[str] | None = None) -> dict[str, Any]:
    """Train the VQ-VAE; returns the summary written to summary.json.

    ``hooks`` (rank 0; e.g. ``vqblur make-bundle``'s progress display, which replaces the bar):
    an object with ``started(step, wall_seconds)``, ``stepped(step, wall_seconds)`` and
    ``evaluated(step, metrics, patience_state)``, and optionally ``validate(model) -> dict`` of
    more validation figures (lower is better), merged into each evaluation before the stopping
    rule reads ``train.patience_metric``. A fine-tune (``train.init_from``) with a stopping rule
    evaluates its starting weights at step 0 too, so ``best.pt`` may be them.

    ``resume``: the checkpoint's config is used, with ``resume_overrides`` (``--set``; only the
    ``train``, ``data`` and ``vq`` tables, e.g. a lower ``train.lr`` for the rest of the run)."""
    rank, world, device = _setup_distributed()
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    start_step, ckpt = 0, None
    if resume:
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        cfg = from_dict(ckpt["config"], str(resume))
        if resume_overrides:
            apply_overrides(cfg, resume_overrides, RESUMABLE_TABLES)
            validate(cfg)
        start_step = int(ckpt["step"])
    if cfg.train.threads:  # the resumed run's own setting (not the defaults --resume is given with)
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank

    train_clips, report, valid_clips, SegmentSampler = _load_data(cfg, rank)
    n_seg = segment_samples(cfg)
    sampler = SegmentSampler(train_clips, n_seg, seed=cfg.train.seed * 1000 + rank + start_step)

    model = VQVAE(cfg).to(device)
    refit = ckpt is None and (not cfg.train.init_from or cfg.train.refit_normaliser)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    elif cfg.train.init_from:  # fine-tuning: weights (and normaliser) from another run
        from vqblur.training.checkpoint import init_weights_from

        skipped = init_weights_from(model, cfg.train.init_from)
        if skipped:
            # e.g. codec v3 -> v4 (160 -> 640 model bins): the per-bin normaliser does not fit
            refit = refit or any(s.startswith("normaliser.") for s in skipped)
            if rank == 0:
                import sys

                note = "; the normaliser is refitted on this run's data" if refit else ""
                print(f"init_from {cfg.train.init_from}: skipped {len(skipped)} tensor(s) whose shape "
                      f"differs (left freshly initialised{note}): {', '.join(skipped)}", file=sys.stderr)
    if refit:
        # normalisation statistics from the same segments on every rank (a fine-tune keeps the
        # starting model's unless train.refit_normaliser, or unless they do not fit this model)
        stats_sampler = SegmentSampler(train_clips, n_seg, seed=cfg.train.seed + 12345)
        with torch.no_grad():
            lm = log_magnitude(torch.from_numpy(stats_sampler.sample(512 if cfg.train.init_from else 128)),
                               cfg.audio, pad_left=False)
        model.normaliser.fit(lm.to(device))
    net: torch.nn.Module = DistributedDataParallel(model, broadcast_buffers=False) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    if ckpt is not None and "optimizer" in ckpt:
        opt.load_state_dict(ckpt["optimizer"])

    valid_logmags = []
    for clip in valid_clips:
        lm = log_magnitude(torch.from_numpy(clip.audio[None].astype(np.float32)), cfg.audio)[0]
        T = lm.shape[1] - lm.shape[1] % cfg.audio.frames_per_column
        valid_logmags.append(lm[:, :T])

    meter = EnergyMeter(cfg.train.watts_per_core, use_gpu=device.type == "cuda")
    prior_energy = float(ckpt.get("energy_j", 0.0)) if ckpt else 0.0
    prior_wall = float(ckpt.get("wall_seconds", 0.0)) if ckpt else 0.0
    metrics_path = out / "metrics.jsonl"
    if rank == 0:
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        if not resume and metrics_path.exists():
            metrics_path.unlink()
        log_file = metrics_path.open("a")
        from vqblur.training.model import count_macs_per_column

        macs = count_macs_per_column(VQVAE(cfg))  # a fresh copy: counting runs a forward pass
        macs["encoder_plus_two_decodes"] = macs["encoder"] + 2 * macs["decoder"]
        if progress:
            import sys

            m = cfg.model
            print(f"model: {cfg.rows} rows x {m.rvq_levels} level(s)"
                  + (f" + macro map {cfg.rows // m.macro_factor} rows" if m.macro_factor else "")
                  + f"; multiply-accumulates per code column: encoder {macs['encoder'] / 1e6:.2f} M, decoder "
                  f"{macs['decoder'] / 1e6:.2f} M, encoder + two decodes {macs['encoder_plus_two_decodes'] / 1e6:.2f} M",
                  file=sys.stderr)
        log_file.write(json.dumps({"event": "start", "step": start_step, "world_size": world, "device": str(device),
                                   "train_clips": report.loaded, "skipped_files": report.skipped,
                                   "valid_clips": len(valid_clips), "macs_per_column": macs}) + "\n")
    bar = None
    if rank == 0 and progress and hooks is None:
        from vqblur.common.progress import progress_bar

        bar = progress_bar(cfg.train.steps, initial=start_step, desc="train", unit="step", leave=True)

    t_start = time.perf_counter()
    c_start = time.process_time()
    prior_cpu = float(ckpt.get("cpu_seconds", 0.0)) if ckpt else 0.0
    step = start_step
    last_eval: dict[str, float] = {}
    stop_reason = "steps"
    # the stopping rule (train.patience): best figure so far, evaluations since, and whether it fired
    patience = dict(ckpt.get("patience") or {}) if ckpt else {}
    # ("mark": the figure at the last improvement by patience_min_delta, which resets the count;
    # best.pt is the best figure, however small its lead)
    patience = {"best": patience.get("best"), "best_step": patience.get("best_step", 0),
                "mark": patience.get("mark", patience.get("best")),
                "bad_evals": patience.get("bad_evals", 0), "stopped": bool(patience.get("stopped"))}
    if rank == 0 and hooks is not None:
        hooks.started(start_step, prior_wall)

    def energy_total(reduce: bool) -> tuple[float, str, str]:
        """Energy since the run began; `reduce` (a collective) sums every process's CPU-time estimate."""
        reading = meter.read()
        joules = torch.tensor(reading.joules, dtype=torch.float64)
        if reading.method == "estimated" and world > 1:
            if reduce:
                dist.all_reduce(joules)
            else:  # rank 0 alone: its own share times the number of equal replicas
                joules *= world
        return prior_energy + float(joules), reading.method, reading.source

    def checkpoint(path: Path, resumable: bool = False) -> None:
        """``resumable`` (checkpoint.pt): the live weights (and their average, train.weight_ema);
        otherwise (best.pt, model.pt) the weights evaluated: the average when there is one."""
        joules, _, _ = energy_total(reduce=False)
        extra = {"optimizer": opt.state_dict(), "energy_j": joules,
                 "wall_seconds": prior_wall + time.perf_counter() - t_start,
                 "cpu_seconds": prior_cpu + time.process_time() - c_start,
                 "last_eval": last_eval, "patience": patience}
        if resumable and ema is not None:
            extra["weight_ema"] = [e.clone() for e in ema]
        with (averaged() if not resumable else _nothing()):
            save_checkpoint(path, model, cfg, step, extra)

    from contextlib import contextmanager, nullcontext as _nothing

    params = [p for p in model.parameters()]
    ema = None
    if cfg.train.weight_ema:
        ema = [p.detach().clone() for p in params]
        if ckpt is not None and ckpt.get("weight_ema") is not None:
            ema = [e.to(device) for e in ckpt["weight_ema"]]
    in_average = [False]

    @contextmanager
    def averaged():
        """The averaged weights in the model for the block (nothing to do without train.weight_ema)."""
        if ema is None or in_average[0]:
            yield
            return
        live = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, e in zip(params, ema):
                p.copy_(e)
        in_average[0] = True
        try:
            yield
        finally:
            in_average[0] = False
            with torch.no_grad():
                for p, v in zip(params, live):
                    p.copy_(v)

    def run_eval(patience_stop: bool) -> dict[str, float]:
        """Rank 0: validation (plus the hooks' own figures), logged; the stopping rule's update."""
        with averaged():
            result = evaluate(model, valid_logmags, cfg.model.codebook_size)
            if hooks is not None and hasattr(hooks, "validate"):
                result.update(hooks.validate(model))
                model.train()
        log_file.write(json.dumps({"event": "eval", "step": step, **result}) + "\n")
        log_file.flush()
        if cfg.train.patience and not patience_stop:
            value = float(result[cfg.train.patience_metric])
            if patience["best"] is None or value < patience["best"]:
                patience.update(best=value, best_step=step)
                checkpoint(out / "best.pt")  # the averaged weights with train.weight_ema
            if patience["mark"] is None or value < patience["mark"] - cfg.train.patience_min_delta:
                patience.update(mark=value, bad_evals=0)
            else:
                patience["bad_evals"] += 1
                patience["stopped"] = patience["bad_evals"] >= cfg.train.patience
        if hooks is not None:
            hooks.evaluated(step, result, dict(patience))
        return result

    if (rank == 0 and ckpt is None and cfg.train.init_from and cfg.train.patience and valid_logmags):
        # a fine-tune's starting weights are a candidate too: the best checkpoint can be step 0,
        # so the run never exports weights that validate worse than the ones it started from
        last_eval = run_eval(False)
    while step < cfg.train.steps:
        time_fraction = 0.0
        if cfg.train.max_minutes:
            time_fraction = (prior_wall + time.perf_counter() - t_start) / (cfg.train.max_minutes * 60)
        if cfg.train.max_cpu_minutes:
            time_fraction = max(time_fraction, (prior_cpu + time.process_time() - c_start)
                                / (cfg.train.max_cpu_minutes * 60))
        if dist.is_initialized() and (cfg.train.max_minutes or cfg.train.max_cpu_minutes):
            # one learning rate on every rank (each reads its own clock): else the replicas drift apart
            tf = torch.tensor(time_fraction, dtype=torch.float64)
            dist.all_reduce(tf, op=dist.ReduceOp.MAX)
            time_fraction = float(tf)
        lr = _lr(step, cfg, time_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = torch.from_numpy(sampler.sample(cfg.train.batch_size)).to(device)
        with torch.no_grad():
            logmag = log_magnitude(batch, cfg.audio, pad_left=False)
        terms = losses(net, logmag, cfg)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                torch._foreach_mul_(ema, cfg.train.weight_ema)
                torch._foreach_add_(ema, [p.detach() for p in params], alpha=1.0 - cfg.train.weight_ema)
        step += 1

        elapsed = time.perf_counter() - t_start
        over_time = bool(cfg.train.max_minutes and prior_wall + elapsed > cfg.train.max_minutes * 60)
        over_time = over_time or bool(cfg.train.max_cpu_minutes and prior_cpu + time.process_time() - c_start
                                      > cfg.train.max_cpu_minutes * 60)
        patience_stop = patience["stopped"]  # fired at the previous evaluation (rank 0)
        over_time = over_time or patience_stop
        if dist.is_initialized():  # all ranks must agree to stop
            flag = torch.tensor(int(bool(over_time)))
            dist.all_reduce(flag)
            over_time = bool(flag.item())
        if rank == 0:
            if step % cfg.train.log_every == 0 or step == 1:
                record = {"event": "step", "step": step, "lr": lr, "wall_s": prior_wall + elapsed}
                record.update({k: float(v.detach()) for k, v in terms.items()})
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(terms['loss'].detach()):.3f}", sc=f"{float(terms['sc'].detach()):.3f}",
                                ppl=f"{float(terms['perplexity']):.0f}", use=f"{float(terms['usage']):.2f}")
            if hooks is not None:
                hooks.stepped(step, prior_wall + elapsed)
        do_eval = step % cfg.train.eval_every == 0 or step == cfg.train.steps or over_time
        if do_eval and rank == 0 and valid_logmags:
            last_eval = run_eval(patience_stop)
        if rank == 0 and (step % cfg.train.checkpoint_every == 0 or over_time):
            checkpoint(out / "checkpoint.pt", resumable=True)
        if over_time:
            stop_reason = "patience" if patience_stop else "max_minutes"
            break

    joules, method, source = energy_total(reduce=True)
    replica_hashes = [state_sha256(model)]
    if dist.is_initialized():
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, replica_hashes[0])
        replica_hashes = gathered
    wall = prior_wall + time.perf_counter() - t_start
    summary: dict[str, Any] = {}
    if rank == 0:
        if bar is not None:
            bar.close()
        checkpoint(out / "checkpoint.pt", resumable=True)
        checkpoint(out / "model.pt")
        summary = {
            "steps": step, "stop_reason": stop_reason, "world_size": world, "device": str(device),
            "wall_seconds": wall, "cpu_seconds": prior_cpu + time.process_time() - c_start, "energy_j": joules, "energy_method": method, "energy_source": source,
            "co2e_g": co2e_grams(joules), "final_eval": last_eval, "train_clips": report.loaded,
            **({"patience": patience} if cfg.train.patience else {}),
            "replica_sha256": replica_hashes, "replicas_identical": len(set(replica_hashes)) == 1,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        log_file.write(json.dumps({"event": "end", **summary}) + "\n")
        log_file.close()
    if dist.is_initialized():
        dist.barrier()
        # Torn down here, not left to the interpreter's exit: there gloo's worker threads may still
        # hold tensors and abort the process (SIGABRT, "terminate called without an active exception").
        dist.destroy_process_group()
    return summary
