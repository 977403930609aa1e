"""``vqblur make-bundle FOLDER --out DIR``: a model bundle from a folder of audio, in one command.

(The pipeline sits in the CLI layer: it drives training, export, the engine and the measures.)

The steps (docs/OWN_SOUNDS.md is the user's page):

1. **Read the folder** (:mod:`vqblur.training.data.own_folder`): every file libsndfile reads,
   mono, resampled with soxr to the model's rate; files skipped with a reason; a bad folder is
   refused in one line (exit 2) before anything is written.
2. **Hold out whole files** by the sha1 of their names (the same ones on every rerun), for the
   card only; **validation** (checkpoint choice, stopping) is the last ``VALID_SHARE`` of each
   training file, not trained on.
3. **Train** in a work folder (default ``DIR.work``, beside ``--out``): fine-tune the shipped
   default model (its config comes from its checkpoint), or ``--from-scratch`` with that config
   and fresh weights, with the card's mel-LSD as a loss term (``train.mel_weight``), judged by
   the card's mel-LSD + |level| of the offline pure codec (:func:`validate_mel`) on an
   exponential average of the weights, from step 0 (the shipped model is a candidate), until
   validation stops improving for ``train.patience`` evaluations or
   the ``--minutes`` budget is spent; a time-based progress bar shows the ETA and the current
   validation figure. Checkpoints every ``--eval-every`` steps; rerunning the same command
   resumes from the last one and says so (a changed folder or mode is refused, never
   restarted silently; ``--restart`` starts over).
4. **Finish**: encode the folder with the trained model, fit both Naive Bayes tables (micro
   level 0 and the macro map) on the training files' codes, evaluate them on the held-out
   files, export (ONNX step graphs, manifest, sha256 of every file), check parity, measure the
   pure codec on the held-out files through the engine before (the shipped bundle) and after,
   print the card, and move the finished bundle into ``--out`` (replacing a bundle there).

``--palette-only`` keeps the shipped codec and refits only the two NB tables on the folder's
codes (the bundle's own ONNX encoder, so the codes are the engine's), in minutes.

Under ``torchrun`` every rank runs the command: rank 0 reads the folder and stages the data,
all ranks train (DistributedDataParallel, as ``vqblur train``), rank 0 finishes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vqblur.common.errors import UserError
from vqblur.training.data import own_folder as of

STATE_FILE = "state.json"
STATE_VERSION = 2  # 2: validation on the tails of the training files, not on the held-out files
FINETUNE_LR = 5e-4
FINETUNE_LR_MIN = 2e-5
PATIENCE = 5  # evaluations without improvement of the validation figure before stopping
# The validation figure: the card's own mel-LSD (vqblur.measure.mel.mel_lsd_db) of the pure
# codec's offline resynthesis (training/evaluate.py, the input's phase, as the engine) of the
# validation excerpts, plus their level error |level| (dB): the mel-LSD alone rewards a gain
# drifting up (on the 10-minute folder it chose a checkpoint at +0.42 dB, SC 3 dB worse than the
# shipped model's). SC (the figure before) and training's LSD both favour the loud bands and
# chose checkpoints whose held-out mel-LSD was worse than the shipped model's.
PATIENCE_METRIC = "mel_lsd_level_db"
PATIENCE_MIN_DELTA = 0.005  # dB
# The fine-tune's loss adds the mel-LSD on the model's STFT (training/mel_loss.py) at this weight
# (in dB: about 2-3 dB at the model's resolution against a loss of about 0.35 without it).
MEL_WEIGHT = 0.1
# The fine-tune keeps the shipped model's per-bin normalisation (train.refit_normaliser off), so
# its step-0 candidate is the shipped model itself. Refitted on the 10-minute folder's training
# audio (no training) it measured 1.19 dB on the held-out files against 1.25, but on the
# validation tails 1.23 + 0.12 dB level error against 1.23 + 0.05: no clear gain.
FINETUNE_REFIT_NORMALISER = False
# Validation evaluates (and the bundle is exported from) an exponential average of the weights
# (train.weight_ema, this decay per step: about 200 steps): the live weights' level swung by
# +-0.5 dB from one evaluation to the next on the 10-minute folder, and the checkpoint chosen
# was the one that happened to swing up.
WEIGHT_EMA = 0.995
# Validation audio: the last VALID_SHARE of every training file (not trained on). The card's
# held-out files are neither trained on nor used to choose the checkpoint or to stop.
VALID_SHARE = 0.1
EVAL_EVERY = 100  # steps between validation + checkpoint
EVAL_EXCERPT_SECONDS = 5.0
EVAL_TOTAL_SECONDS = 40.0
CARD_MAX_SECONDS = 180.0  # held-out audio the card measures (the middle of each file)
CARD_FILE_SECONDS = 30.0
PARITY_SECONDS = 10.0
PARITY_MIN_CODE_AGREEMENT = 0.999
MAX_NB_EVAL_CELLS = 2_000_000


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shipped_checkpoint() -> Path:
    """The shipped default model's checkpoint (training/default_run/model.pt)."""
    from importlib import resources

    return Path(str(resources.files("vqblur.training") / "default_run" / "model.pt"))


def default_minutes(audio_minutes: float, from_scratch: bool) -> float:
    """The training budget when --minutes is not given: fine-tuning twice the audio's
    minutes, 5 to 20; from scratch the shipped model's own 120."""
    if from_scratch:
        return 120.0
    return float(min(20.0, max(5.0, 2.0 * audio_minutes)))


@dataclass
class Options:
    folder: Path
    out: Path
    work: Path | None = None
    minutes: float | None = None
    from_scratch: bool = False
    palette_only: bool = False
    restart: bool = False
    base_checkpoint: Path | None = None
    base_bundle: Path | None = None
    eval_every: int = EVAL_EVERY
    patience: int = PATIENCE
    progress: bool = True
    watts_per_core: float | None = None
    base_label: str = "the shipped model"

    @property
    def mode(self) -> str:
        return "palette" if self.palette_only else ("from-scratch" if self.from_scratch else "fine-tune")


class Printer:
    def __init__(self, rank: int = 0):
        self.rank = rank

    def __call__(self, *parts: Any) -> None:
        if self.rank == 0:
            print(*parts, flush=True)


# --------------------------------------------------------------------------- checks up front


def check_out(out: Path, base: Path | None = None) -> str:
    """Refuse an --out we must not overwrite; -> 'new' | 'empty' | 'bundle'."""
    if base is not None and out.exists() and out.resolve() == Path(base).resolve():
        raise UserError(f"--out {out} is the bundle this one starts from; choose another folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if out.is_dir():
        if not any(out.iterdir()):
            return "empty"
        if not (out / "manifest.json").is_file():
            raise UserError(f"--out {out}: folder is not empty and holds no bundle; choose another --out")
        return "bundle"
    return "new"


def base_bundle_path(opts: Options) -> Path:
    if opts.base_bundle is not None:
        return Path(opts.base_bundle).expanduser()
    from vqblur.engine.bundle import default_bundle_path

    return default_bundle_path()


def scan_and_judge(opts: Options, sample_rate: int, work: Path | None) -> of.FolderScan:
    exclude = [opts.out] + ([work] if work is not None else [])
    scan = of.scan_folder(opts.folder, sample_rate, exclude=exclude, progress=opts.progress)
    why = of.refusal(scan)
    if why:
        raise UserError(why)
    return scan


def describe_scan(say: Printer, scan: of.FolderScan, holdout: of.Holdout) -> None:
    rates = sorted({f.source_rate for f in scan.files})
    chans = sorted({f.channels for f in scan.files})
    fmts = sorted({f.format for f in scan.files})
    say(f"folder {scan.root}: {len(scan.files)} audio file(s), {scan.seconds / 60:.1f} min "
        f"({', '.join(fmts)}; {'/'.join(str(r) for r in rates)} Hz; "
        f"{'/'.join(str(c) for c in chans)} channel(s); read as mono at {scan.sample_rate} Hz)")
    if scan.skipped:
        say(f"  skipped {len(scan.skipped)} file(s):")
        for name, why in scan.skipped[:12]:
            say(f"    {name}: {why}")
        if len(scan.skipped) > 12:
            say(f"    ... and {len(scan.skipped) - 12} more")
    if scan.ignored:
        say(f"  ignored {scan.ignored} file(s) that are not audio (hidden, or .txt/.jpg/...)")
    if holdout.tail:
        say(f"  held out (never trained on; the card measures on them): {holdout.note}")
    else:
        secs = sum(f.seconds for f in scan.files if f.name in holdout.names)
        say(f"  held out (never trained on; the card measures on them) ({secs / 60:.1f} min, whole "
            "files, fixed by name): " + ", ".join(holdout.names))


# --------------------------------------------------------------------------- the work folder


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _read_state(work: Path) -> dict | None:
    p = work / STATE_FILE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _fingerprint_diff(old: list, new: list) -> str:
    a = {r[0]: tuple(r[1:]) for r in old}
    b = {r[0]: tuple(r[1:]) for r in new}
    parts = []
    for label, names in (("added", sorted(set(b) - set(a))), ("removed", sorted(set(a) - set(b))),
                         ("changed", sorted(n for n in set(a) & set(b) if a[n] != b[n]))):
        if names:
            parts.append(f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
    return "; ".join(parts) or "file list differs"


def open_work(opts: Options, work: Path, scan: of.FolderScan, say: Printer) -> dict:
    """The work folder's state: a new one, or the one a rerun continues (checked)."""
    fp = scan.fingerprint()
    if opts.restart and work.exists():
        say(f"--restart: removing the work folder {work}")
        shutil.rmtree(work)
    state = _read_state(work) if work.exists() else None
    if work.exists() and state is None:
        if any(work.iterdir()):
            raise UserError(f"work folder {work} exists and is not a make-bundle work folder "
                            "(no state.json); remove it or pass another --work")
    if state is not None:
        if state.get("version") != STATE_VERSION:
            raise UserError(f"work folder {work} was made by another version of make-bundle; "
                            "pass --restart to start over")
        if state["fingerprint"] != fp:
            raise UserError(f"{scan.root} has changed since the run in {work} began "
                            f"({_fingerprint_diff(state['fingerprint'], fp)}); put it back to "
                            "continue, or pass --restart to start over")
        if state["mode"] != opts.mode:
            raise UserError(f"the run in {work} is a {state['mode']} run; this command asks for "
                            f"{opts.mode}: rerun it as it began to continue, or pass --restart to "
                            "start over")
        if str(state.get("base_checkpoint")) != str(opts.base_checkpoint):
            raise UserError(f"the run in {work} started from {state.get('base_checkpoint')}, not "
                            f"{opts.base_checkpoint}; pass --restart to start over")
        return state
    work.mkdir(parents=True, exist_ok=True)
    state = {"version": STATE_VERSION, "folder": str(scan.root.resolve()), "out": str(opts.out.resolve()),
             "mode": opts.mode, "base_checkpoint": str(opts.base_checkpoint), "minutes": opts.minutes,
             "fingerprint": fp, "created": now_iso(), "phase": "new", "invocations": []}
    _write_json(work / STATE_FILE, state)
    return state


def stage_data(work: Path, train: list[tuple[str, np.ndarray]], evalset: list[tuple[str, np.ndarray]],
               sample_rate: int) -> None:
    """WORK/data/train/*.wav (pieces of about 10 s) and WORK/data/valid/*.wav (the validation
    excerpts), float WAV at the model's rate; written to data.tmp, then renamed."""
    import soundfile as sf

    final = work / "data"
    if (final / "done").is_file():
        return
    tmp = work / "data.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    (tmp / "train").mkdir(parents=True)
    (tmp / "valid").mkdir(parents=True)
    index = {"train": [], "valid": []}
    for i, (name, a) in enumerate(train):
        for j, piece in enumerate(of.pieces_of(a, sample_rate)):
            fn = f"f{i:04d}_{j:03d}.wav"
            sf.write(str(tmp / "train" / fn), piece, sample_rate, subtype="FLOAT")
            index["train"].append([fn, name])
    for i, (name, a) in enumerate(evalset):
        fn = f"v{i:04d}.wav"
        sf.write(str(tmp / "valid" / fn), a, sample_rate, subtype="FLOAT")
        index["valid"].append([fn, name])
    _write_json(tmp / "index.json", index)
    (tmp / "done").write_text("staged\n")
    os.replace(tmp, final)


# --------------------------------------------------------------------------- progress


def _fmt_min(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class TrainProgress:
    """train()'s hooks: a time-based bar (on a terminal) with the ETA and the validation figure;
    one line per evaluation otherwise."""

    def __init__(self, budget_s: float, metric: str, show_bar: bool, say: Printer):
        self.budget = budget_s
        self.metric = metric
        self.say = say
        self.bar = None
        self.show_bar = show_bar
        self.step = 0
        self.wall = 0.0
        self.valid = "valid: (first evaluation pending)"
        self.last_draw = 0.0

    def started(self, step: int, wall: float) -> None:
        self.step, self.wall = step, wall
        if self.show_bar:
            from vqblur.common.progress import progress_bar

            self.bar = progress_bar(int(self.budget), desc="train", unit="s", postfix=[""],
                                    bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix[0]}")
            self.bar.n = int(min(wall, self.budget))
            self._draw()

    def _text(self) -> str:
        left = max(0.0, self.budget - self.wall)
        return (f"step {self.step}, {self.wall / 60:.1f}/{self.budget / 60:.1f} min, "
                f"ETA {left / 60:.1f} min (or sooner: stopping rule), {self.valid}")

    def _draw(self) -> None:
        if self.bar is not None:
            self.bar.n = int(min(self.wall, self.budget))
            self.bar.postfix[0] = self._text()
            self.bar.refresh()

    def stepped(self, step: int, wall: float) -> None:
        self.step, self.wall = step, wall
        t = time.monotonic()
        if self.bar is not None and t - self.last_draw > 0.5:
            self.last_draw = t
            self._draw()

    def evaluated(self, step: int, metrics: dict, patience: dict) -> None:
        v = metrics.get(self.metric)
        best = patience.get("best")
        label = {"lsd_db": "LSD", "sc_db": "SC", "mel_lsd_db": "mel-LSD",
                 "mel_lsd_level_db": "mel-LSD + |level|"}.get(self.metric, self.metric)
        self.valid = (f"valid {label} {v:.3f} dB" if v is not None else "valid: -")
        if best is not None:
            self.valid += f" (best {best:.3f} at step {patience.get('best_step')})"
        if self.bar is not None:
            self._draw()
        else:
            self.say(f"  {self._text()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Validator(TrainProgress):
    """The progress hooks plus ``validate(model)``: the card's mel-LSD (and level) of the pure
    codec's offline resynthesis of the validation excerpts, their mean."""

    def __init__(self, clips: list[tuple[str, np.ndarray]], sample_rate: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clips = [(n, np.asarray(a, np.float32)) for n, a in clips if a.size >= 4096]
        self.sample_rate = sample_rate

    def validate(self, model) -> dict[str, float]:
        return validate_mel(model, self.clips, self.sample_rate)


def validate_mel(model, clips: list[tuple[str, np.ndarray]], sample_rate: int) -> dict[str, float]:
    """Mean mel-LSD, level change and their sum with the level error (``mel_lsd_level_db``,
    the mean over clips of mel-LSD + |level|) of the offline pure codec on ``clips``."""
    from vqblur.common.spectral import level_change_db
    from vqblur.measure.mel import mel_lsd_db
    from vqblur.training.evaluate import resynthesise

    if not clips:
        return {}
    mels, levels = [], []
    for _, a in clips:
        y = resynthesise(model, a)
        mels.append(mel_lsd_db(a, y, sample_rate))
        levels.append(level_change_db(a, y))
    return {"mel_lsd_db": float(np.mean(mels)), "mel_level_db": float(np.mean(levels)),
            "mel_lsd_level_db": float(np.mean(np.asarray(mels) + np.abs(levels)))}


# --------------------------------------------------------------------------- encoding and NB


def encode_maps(model, cfg, audio: np.ndarray, chunk_columns: int = 2048, context: int = 16
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """audio float32 [n] -> (micro level-0 codes [rows, C], macro codes [rows_macro, C] or None),
    the offline model in chunks (the first ``context`` columns of each chunk are redone from the
    previous chunk's audio: the encoder sees 6 columns back, so the codes are the whole clip's)."""
    import torch

    from vqblur.training.features import history_samples, log_magnitude

    a = cfg.audio
    F, R = a.frames_per_column, a.hop
    N = history_samples(a) + R  # the longest window (the split framing's long one)
    x = np.concatenate([np.zeros(N - R, np.float32), np.asarray(audio, np.float32)])
    frames = (len(x) - N) // R + 1 if len(x) >= N else 0
    C = frames // F
    micro, macro = [], []
    with torch.no_grad():
        for c0 in range(0, C, chunk_columns):
            c1 = min(C, c0 + chunk_columns)
            s = max(0, c0 - context)
            f0, f1 = s * F, c1 * F
            seg = torch.from_numpy(x[f0 * R:(f1 - 1) * R + N])[None]
            lm = log_magnitude(seg, a, pad_left=False)
            codes = model.encode_all(lm)
            micro.append(codes.micro[0, 0, :, c0 - s:].numpy())
            if codes.macro is not None:
                macro.append(codes.macro[0, :, c0 - s:].numpy())
    rows = cfg.rows
    mi = np.concatenate(micro, axis=1).astype(np.int64) if micro else np.zeros((rows, 0), np.int64)
    ma = (np.concatenate(macro, axis=1).astype(np.int64) if macro else None)
    return mi, ma


def fit_tables(train_maps: dict[str, list[np.ndarray]], valid_maps: dict[str, list[np.ndarray]], K: int,
               out_dir: Path, base_tables: dict[str, Path] | None = None) -> dict[str, dict]:
    """Fit and evaluate one NB table per map -> {map: {"path", "evaluation", "base_evaluation"}}."""
    from vqblur.training.nb_fit import evaluate_nb, fit_nb, save_nb_table

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"micro": "nb_table.npz", "macro": "nb_macro.npz"}
    result = {}
    for name, maps in train_maps.items():
        maps = [m for m in maps if m.size]
        table = fit_nb(maps, K, offsets="8", alpha=1.0)
        path = save_nb_table(out_dir / files[name], table)
        held = [m for m in valid_maps.get(name, []) if m.size]
        ev = evaluate_nb(table, held, {"full": "full", "causal": "causal"},
                         max_cells=MAX_NB_EVAL_CELLS) if held else None
        base_ev = None
        if base_tables and base_tables.get(name) and held:
            with np.load(base_tables[name], allow_pickle=False) as z:
                bt = {k: z[k] for k in z.files}
            base_ev = evaluate_nb(bt, held, {"full": "full", "causal": "causal"}, max_cells=MAX_NB_EVAL_CELLS)
        summary = {"map": name, "train_codemaps": len(maps), "train_cells": int(table["n_cells"]),
                   "alpha": 1.0, "evaluation": {"held_out": ev} if ev else {}}
        (out_dir / (Path(files[name]).stem + ".eval.json")).write_text(json.dumps(summary, indent=2) + "\n")
        result[name] = {"path": path, "evaluation": ev, "base_evaluation": base_ev}
    return result


def _nats(ev: dict | None, model: str) -> float | None:
    if not ev:
        return None
    m = ev["models"].get(model)
    return None if m is None else float(m["nll_nats"])


# --------------------------------------------------------------------------- the card


def card_clips(valid: list[tuple[str, np.ndarray]], sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """The held-out audio the card measures: the middle CARD_FILE_SECONDS of each held-out
    piece, at most CARD_MAX_SECONDS in all."""
    out, total = [], 0.0
    n = int(CARD_FILE_SECONDS * sample_rate)
    for name, a in valid:
        if total >= CARD_MAX_SECONDS:
            break
        s = max(0, (a.size - n) // 2)
        piece = a[s:s + n]
        out.append((name, piece))
        total += piece.size / sample_rate
    return out


def format_card(c: dict) -> str:
    L = []
    add = L.append
    add("")
    add(f"== vqblur bundle card: {c['bundle']}")
    a = c["audio"]
    add(f"audio       {a['minutes']:.1f} min in {a['files']} file(s): {a['train_minutes']:.1f} min trained on, "
        + (f"{a['validation_minutes']:.1f} min validation (their tails), " if a.get("validation_minutes") else "")
        + f"{a['held_out_minutes']:.1f} min held out ({a['held_out_desc']})")
    t = c.get("training")
    if t:
        add(f"training    {t['mode']}: {t['steps']} steps, "
            f"{t['wall_minutes']:.1f} min wall, {t['cpu_minutes']:.1f} CPU min on {t['device']}"
            + (f" x {t['world_size']} processes" if t.get("world_size", 1) > 1 else "") + "; "
            f"stopped: {t['stop_reason']}")
        add(f"energy      training {t['energy_kj']:.1f} kJ, {t['energy_method']} ({t['energy_source']}); "
            f"{t['co2e_g']:.2f} g CO2e"
            + (f"; the rest (tables, export, measures) {t['finishing_kj']:.1f} kJ" if "finishing_kj" in t else ""))
    else:
        add(f"codec       kept: {c['codec']} (palette only: the Naive Bayes tables were refitted)")
        add(f"energy      {c['energy_kj']:.2f} kJ, {c['energy_method']} ({c['energy_source']})")
    q = c.get("quality")
    if q:
        add(f"pure codec  on {q['clips']} held-out file(s), {q['seconds']:.0f} s (zone 0, detail 0, medians):")
        add(f"              {'':16s} {'mel-LSD':>8s} {'level':>8s} {'SC':>8s}")
        for label, key in ((q.get("before_label", "shipped model"), "before"), ("this bundle", "after")):
            r = q.get(key)
            if r and r.get("clips"):
                add(f"              {label:16s} {r['mel_lsd_db']:6.2f} dB {r['level_change_db']:+6.2f} dB "
                    f"{r['sc_db']:6.1f} dB")
    nb = c["nb"]
    add("blur tables Naive Bayes nats/cell on the held-out files (lower is better):")
    for name in ("micro", "macro"):
        r = nb.get(name)
        if not r or r.get("full") is None:
            continue
        gain = r['unigram'] - r['full']
        line = (f"              {name:6s} {r['full']:.2f} (causal {r['causal']:.2f}), unigram "
                f"{r['unigram']:.2f}: {abs(gain):.2f} nat {'better' if gain >= 0 else 'worse'}")
        if r.get("shipped_full") is not None:
            line += f"; {c.get('base_table_label', 'the shipped table')} {r['shipped_full']:.2f}"
        add(line)
    add(f"made in     {c['wall_minutes']:.1f} min wall this run{c.get('resumed_note', '')}")
    add(f"use it      vqblur live --bundle {c['bundle']}")
    add(f"            vqblur process IN.wav OUT.wav --bundle {c['bundle']}")
    return "\n".join(L)


def nb_card(tables: dict[str, dict]) -> dict:
    out = {}
    for name, r in tables.items():
        ev = r.get("evaluation")
        out[name] = {"full": _nats(ev, "full"), "causal": _nats(ev, "causal"), "unigram": _nats(ev, "unigram"),
                     "shipped_full": _nats(r.get("base_evaluation"), "full"),
                     "cells": ev["n_cells"] if ev else 0}
    return out


def install_bundle(src: Path, out: Path) -> None:
    """Copy the finished bundle ``src`` into place at ``out`` (a new name beside it, then
    renames; a bundle already in ``out`` is replaced)."""
    out = out.resolve() if out.exists() else out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{out.name}.incoming-", dir=out.parent))
    try:
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, incoming / f.name)
        old = None
        if out.exists():
            if any(out.iterdir()):
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.replace(out, old)
            else:
                out.rmdir()
        os.replace(incoming, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if incoming.exists():
            shutil.rmtree(incoming, ignore_errors=True)
    clean_stale(out)


def clean_stale(out: Path) -> None:
    """Remove what an earlier, killed make-bundle left beside ``out`` (hidden staging folders)."""
    parent = out.absolute().parent
    if not parent.is_dir():
        return
    for pattern in (".{}.incoming-*", ".{}.old-*", ".{}.palette-*"):
        for stale in parent.glob(pattern.format(out.name)):
            shutil.rmtree(stale, ignore_errors=True)


def _energy_meter(watts: float | None):
    try:
        from vqblur.common.energy import EnergyMeter
    except ImportError:  # pragma: no cover - before the energy meter moved to the ground floor
        from vqblur.measure.energy import EnergyMeter
    return EnergyMeter(watts) if watts else EnergyMeter()


# --------------------------------------------------------------------------- palette only


def make_palette(opts: Options, say: Printer) -> int:
    from vqblur.engine.bundle import load_bundle, write_manifest
    from vqblur.measure.codes import encode_codes

    t0 = time.perf_counter()
    meter = _energy_meter(opts.watts_per_core)
    base_dir = base_bundle_path(opts)
    out_kind = check_out(opts.out, base_dir)
    base = load_bundle(base_dir)
    if not base.nb_macro_path:
        raise UserError(f"{base_dir}: the codec has no macro map; --palette-only needs a format-2 bundle")
    scan = scan_and_judge(opts, base.sample_rate, None)
    holdout = of.choose_holdout(scan.files)
    describe_scan(say, scan, holdout)
    say(f"palette only: keeping the codec of {base_dir}; refitting its Naive Bayes tables on the folder's codes")
    if out_kind == "bundle":
        say(f"  (the bundle in {opts.out} will be replaced)")
    train, valid = holdout.split(scan.files)
    from vqblur.engine.codec import OnnxCodec

    codec = OnnxCodec(base, threads=1)
    maps = {"train": {"micro": [], "macro": []}, "valid": {"micro": [], "macro": []}}
    items = [("train", n, a) for n, a in train] + [("valid", n, a) for n, a in valid]
    it = items
    if opts.progress:
        from vqblur.common.progress import progress_iter

        it = progress_iter(items, desc="encode", unit="file")
    L, R = base.levels, base.rows
    for split, _, a in it:
        g = encode_codes(base, a, codec=codec, map_name="all")
        maps[split]["micro"].append(g[:R])
        maps[split]["macro"].append(g[L * R:])
    t_enc = time.perf_counter() - t0
    parent = opts.out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(opts.out)
    stage = Path(tempfile.mkdtemp(prefix=f".{opts.out.name}.palette-", dir=parent))
    try:
        tables = fit_tables(maps["train"], maps["valid"], base.codebook_size, stage / "nb",
                            base_tables={"micro": base.nb_path, "macro": base.nb_macro_path})
        bdir = stage / "bundle"
        bdir.mkdir()
        m = json.loads((base.root / "manifest.json").read_text())
        for f in (m["encoder"]["file"], m["decoder"]["file"]):
            shutil.copy2(base.root / f, bdir / f)
        from vqblur.export.bundle_writer import validate_nb_table

        for key, name in (("nb", "micro"), ("nb_macro", "macro")):
            fn = Path(tables[name]["path"]).name
            shutil.copy2(tables[name]["path"], bdir / fn)
            info = validate_nb_table(bdir / fn, R if name == "micro" else base.rows_macro, base.codebook_size)
            m[key] = {"file": fn, **info,
                      "evaluation": {"held_out": tables[name]["evaluation"]} if tables[name]["evaluation"] else {}}
        m["files"] = {f: "" for f in (m["encoder"]["file"], m["decoder"]["file"], m["nb"]["file"],
                                      m["nb_macro"]["file"])}
        m["created"] = now_iso()
        reading = meter.read()
        card = {
            "bundle": str(opts.out), "kind": "palette", "codec": str(base_dir),
            "base_table_label": "the shipped table" if opts.base_bundle is None else "the base bundle's table",
            "audio": _audio_card(scan, holdout, train, valid),
            "nb": nb_card(tables),
            "energy_kj": reading.joules / 1e3, "energy_method": reading.method, "energy_source": reading.source,
            "wall_minutes": (time.perf_counter() - t0) / 60, "encode_seconds": round(t_enc, 1),
        }
        m["make_bundle"] = {"kind": "palette", "folder": str(scan.root.resolve()),
                            "codec_from": str(base_dir), "codec_encoder_sha256": base.manifest["files"].get(
                                base.manifest["encoder"]["file"]),
                            "held_out": holdout.names or holdout.note, "card": card}
        write_manifest(bdir, m)
        load_bundle(bdir)  # the engine's own checks (hashes, shapes, one trial step)
        text = format_card(card)
        (bdir / "card.txt").write_text(text.lstrip("\n") + "\n")
        (bdir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        install_bundle(bdir, opts.out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    card["wall_minutes"] = (time.perf_counter() - t0) / 60
    say(format_card(card))
    return 0


def _audio_card(scan, holdout, train, valid, fit=None) -> dict:
    """``fit``: what training steps on (the training files less their validation tails)."""
    sr = scan.sample_rate
    held = sum(a.size for _, a in valid) / sr
    total_train = sum(a.size for _, a in train) / sr / 60
    fit_min = total_train if fit is None else sum(a.size for _, a in fit) / sr / 60
    return {"files": len(scan.files), "minutes": scan.seconds / 60,
            "train_minutes": fit_min, "validation_minutes": total_train - fit_min, "held_out_minutes": held / 60,
            "held_out": holdout.names, "held_out_desc": (f"{len(holdout.names)} whole file(s)" if not holdout.tail
                                                          else "the last part of each file"),
            "skipped": [list(s) for s in scan.skipped]}


# --------------------------------------------------------------------------- the whole command


def _dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _broadcast(obj: Any, world: int) -> Any:
    if world <= 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def make_bundle(opts: Options) -> int:
    if opts.palette_only:
        if opts.from_scratch:
            raise UserError("--palette-only keeps the shipped codec: it cannot be --from-scratch")
        return make_palette(opts, Printer())
    rank, world = _dist_env()
    say = Printer(rank)
    if world > 1:
        from vqblur.training.train import _setup_distributed

        _setup_distributed()
    t0 = time.perf_counter()
    error, plan = None, None
    if rank == 0:
        try:
            plan = _prepare(opts, say)
        except UserError as exc:
            error = str(exc)
    error = _broadcast(error, world)
    if error:
        if rank == 0:
            raise UserError(error)
        return 2
    if world > 1:  # the other ranks need the config and where to train
        keys = ("cfg", "resume", "run", "done", "already")
        sub = _broadcast({k: plan.get(k) for k in keys} if rank == 0 else None, world)
        if rank != 0:
            plan = sub
    if plan.get("already"):
        return 0
    return _train_and_finish(opts, plan, say, rank, world, t0)


def _prepare(opts: Options, say: Printer) -> dict:
    """Rank 0: check --out, read and judge the folder, open or continue the work folder, stage
    the data, and make the training config."""
    from vqblur.training.checkpoint import load_checkpoint
    from vqblur.training.config import from_dict

    out_kind = check_out(opts.out, base_bundle_path(opts))
    work = (opts.work or opts.out.absolute().parent / f"{opts.out.name}.work").absolute()
    opts.work = work
    ckpt_path = Path(opts.base_checkpoint or shipped_checkpoint()).expanduser().absolute()
    opts.base_label = "the shipped model" if opts.base_checkpoint is None else f"the model {ckpt_path}"
    opts.base_checkpoint = ckpt_path
    if not ckpt_path.is_file():
        raise UserError(f"the shipped model's checkpoint is not here ({ckpt_path}): pass --base-checkpoint "
                        "CKPT (a vqblur train model.pt), or use --palette-only")
    _, base_cfg, base_ckpt = load_checkpoint(ckpt_path)
    sr = base_cfg.audio.sample_rate
    scan = scan_and_judge(opts, sr, work)
    holdout = of.choose_holdout(scan.files)
    describe_scan(say, scan, holdout)
    train, valid = holdout.split(scan.files)
    fit, tails = of.validation_tails(train, VALID_SHARE, sample_rate=sr)
    vmin = sum(a.size for _, a in tails) / sr / 60
    if fit is train:
        say(f"  validation (chooses the checkpoint and stops training): the training files themselves "
            f"(too short to keep a tail apart), {vmin:.1f} min")
    else:
        say(f"  validation (chooses the checkpoint and stops training; not trained on): the last "
            f"{100 * VALID_SHARE:.0f} % of each training file, {vmin:.1f} min")
    minutes = opts.minutes if opts.minutes is not None else default_minutes(scan.seconds / 60, opts.from_scratch)
    opts.minutes = minutes
    state = open_work(opts, work, scan, say)
    run = work / "run"
    resume, done = None, False
    if state["phase"] == "done" and (opts.out / "card.txt").is_file():
        say(f"{opts.out} is already made from this folder (work folder {work}); pass --restart to "
            "make it again. Its card:")
        say((opts.out / "card.txt").read_text().rstrip())
        return {"already": True}
    if (run / "model.pt").is_file() and (run / "summary.json").is_file():
        done = True
        s = json.loads((run / "summary.json").read_text())
        say(f"resuming {work}: training finished earlier ({s['steps']} steps, stopped: "
            f"{_reason(s['stop_reason'])}); finishing the bundle")
    elif (run / "checkpoint.pt").is_file():
        import torch

        ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
        resume = run / "checkpoint.pt"
        budget = ck["config"]["train"]["max_minutes"]
        say(f"resuming {work}: from its last checkpoint, step {int(ck['step'])}, "
            f"{float(ck.get('wall_seconds', 0)) / 60:.1f} of {budget:.1f} min trained "
            f"(saved {datetime.fromtimestamp(resume.stat().st_mtime).strftime('%H:%M:%S')}; "
            "training since then is redone)")
        if abs(float(budget) - minutes) > 1e-9:
            say(f"  note: the run keeps the budget it began with ({budget:g} min); --restart starts over "
                f"with {minutes:g}")
    elif state["phase"] != "new":
        staged = (work / "data" / "done").is_file()
        say(f"resuming {work}: " + ("the audio is staged, but no checkpoint was written yet"
                                     if staged else "it was stopped while staging the audio")
            + ": training starts at step 0")
    state["invocations"].append({"started": now_iso(), "resume_step": None})
    state["phase"] = "staging" if state["phase"] == "new" else state["phase"]
    _write_json(work / STATE_FILE, state)
    evalset = of.excerpts(tails, sr, EVAL_EXCERPT_SECONDS, EVAL_TOTAL_SECONDS)
    if not done:
        stage_data(work, fit, evalset, sr)
    state["phase"] = "training" if not done else "finishing"
    _write_json(work / STATE_FILE, state)

    d = base_cfg.to_dict()
    d["data"].update(source="folder", path=str(work / "data" / "train"), valid_path=str(work / "data" / "valid"),
                     workers=1)
    t = d["train"]
    t.update(steps=10_000_000, max_minutes=float(minutes), max_cpu_minutes=0.0, eval_every=opts.eval_every,
             checkpoint_every=opts.eval_every, eval_examples=max(1, len(evalset)), patience=opts.patience,
             patience_metric=PATIENCE_METRIC, patience_min_delta=PATIENCE_MIN_DELTA, log_every=10,
             mel_weight=MEL_WEIGHT, weight_ema=WEIGHT_EMA)
    if opts.watts_per_core:
        t["watts_per_core"] = opts.watts_per_core
    if opts.from_scratch:
        t["init_from"] = ""
    else:
        t.update(init_from=str(ckpt_path), lr=FINETUNE_LR, lr_min=FINETUNE_LR_MIN,
                 refit_normaliser=FINETUNE_REFIT_NORMALISER)
    cfg = from_dict(d, "make-bundle")
    if not done and resume is None:
        what = (f"fine-tune {opts.base_label}" if not opts.from_scratch else
                f"train a new model from scratch ({opts.base_label}'s config, fresh weights)")
        say(f"training: {what}, at most {minutes:.1f} min (stops sooner when validation has not improved for "
            f"{opts.patience} evaluations of every {opts.eval_every} steps); work folder {work}")
    if out_kind == "bundle":
        say(f"  (the bundle in {opts.out} will be replaced when this one is finished)")
    return {"cfg": cfg, "resume": resume, "run": run, "done": done, "scan": scan, "holdout": holdout,
            "train": train, "valid": valid, "evalset": evalset, "fit": fit, "state": state, "work": work, "base_ckpt_step": int(base_ckpt.get("step", 0))}


def _reason(r: str) -> str:
    return {"patience": "validation stopped improving", "max_minutes": "time budget",
            "steps": "step budget"}.get(r, r)


def _train_and_finish(opts: Options, plan: dict, say: Printer, rank: int, world: int, t0: float) -> int:
    from vqblur.training.train import train

    run = Path(plan["run"])
    summary = None
    if not plan["done"]:
        hooks = None
        if rank == 0:
            hooks = Validator(plan["evalset"], plan["cfg"].audio.sample_rate,
                              plan["cfg"].train.max_minutes * 60, plan["cfg"].train.patience_metric,
                              show_bar=opts.progress and _is_terminal(), say=say)
        try:
            summary = train(plan["cfg"], run, resume=plan["resume"], progress=False, hooks=hooks)
        finally:
            if hooks is not None:
                hooks.close()
    if rank != 0:
        return 0
    if summary is None or not summary:
        summary = json.loads((run / "summary.json").read_text())
    return _finish(opts, plan, summary, say, t0)


def _is_terminal() -> bool:
    from vqblur.common.progress import is_terminal

    return is_terminal()


def _finish(opts: Options, plan: dict, summary: dict, say: Printer, t0: float) -> int:
    from vqblur.engine.bundle import load_bundle, write_manifest
    from vqblur.export.bundle_writer import export_bundle
    from vqblur.export.parity import check_parity, format_parity
    from vqblur.measure.mel import codec_quality
    from vqblur.training.checkpoint import load_checkpoint

    meter = _energy_meter(opts.watts_per_core)
    work: Path = plan["work"]
    run: Path = plan["run"]
    state = plan["state"]
    state["phase"] = "finishing"
    _write_json(work / STATE_FILE, state)
    best = run / "best.pt"
    final = best if best.is_file() else run / "model.pt"
    say(f"training done: {summary['steps']} steps, {summary['wall_seconds'] / 60:.1f} min, stopped: "
        f"{_reason(summary['stop_reason'])}; the bundle uses "
        + (f"the best validation checkpoint (step {summary.get('patience', {}).get('best_step')})"
           if final == best else "the last weights"))
    model, cfg, _ = load_checkpoint(final)
    train, valid = plan["train"], plan["valid"]
    say("encoding the folder with the trained model and fitting both Naive Bayes tables ...")
    maps = {"train": {"micro": [], "macro": []}, "valid": {"micro": [], "macro": []}}
    for split, pieces in (("train", train), ("valid", valid)):
        for _, a in pieces:
            mi, ma = encode_maps(model, cfg, a)
            maps[split]["micro"].append(mi)
            if ma is not None:
                maps[split]["macro"].append(ma)
    if not model.macro_factor:
        for s in maps.values():
            s.pop("macro")
    base_dir = base_bundle_path(opts)
    base = load_bundle(base_dir)
    # (no comparison with the shipped tables here: training moved the codebooks, so the shipped
    # tables' codes no longer mean what the new encoder's codes mean)
    tables = fit_tables(maps["train"], maps["valid"], cfg.model.codebook_size, work / "nb")

    bdir = work / "bundle"
    shutil.rmtree(bdir, ignore_errors=True)
    export_bundle(final, tables["micro"]["path"], bdir,
                  nb_macro_path=tables["macro"]["path"] if "macro" in tables else None)
    parity_audio = np.concatenate([a for _, a in valid])[: int(PARITY_SECONDS * cfg.audio.sample_rate)]
    par = check_parity((model, cfg), bdir, parity_audio, seconds=PARITY_SECONDS)
    par["audio"] = "held-out files of the folder"
    say(format_parity(par))
    # the graphs must be exact (same codes in, same log-magnitudes out); a few codes may flip where
    # two code vectors are nearly equally close (float rounding of the distances in the graph)
    par["make_bundle_passed"] = bool(par["max_abs_err_logmag"] <= par["tolerance"]
                                     and par["code_agreement"] >= PARITY_MIN_CODE_AGREEMENT)
    if not par["make_bundle_passed"]:
        raise UserError("the exported bundle does not match the trained model (parity, above: "
                        f"graph error {par['max_abs_err_logmag']:.3g}, code agreement "
                        f"{100 * par['code_agreement']:.3f} %); nothing was written to {opts.out}")
    if not par["passed"]:
        say(f"  parity accepted: the graphs are exact; {par['codes_differ']} of {par['codes_total']} codes "
            "differ at near-ties of the code distances")

    say("measuring the pure codec on the held-out files: the shipped model, then this bundle ...")
    clips = card_clips(valid, cfg.audio.sample_rate)
    before = codec_quality(base, clips) if base.sample_rate == cfg.audio.sample_rate else None
    after = codec_quality(bdir, clips)
    t = {
        "mode": f"fine-tuned {opts.base_label}" if not opts.from_scratch else "trained from scratch",
        "steps": int(summary["steps"]), "wall_minutes": summary["wall_seconds"] / 60,
        "cpu_minutes": summary["cpu_seconds"] / 60, "device": summary.get("device", "cpu"),
        "world_size": summary.get("world_size", 1), "stop_reason": _reason(summary["stop_reason"]),
        "energy_kj": summary["energy_j"] / 1e3, "energy_method": summary["energy_method"],
        "energy_source": summary["energy_source"], "co2e_g": summary["co2e_g"],
        "best_step": summary.get("patience", {}).get("best_step"),
        "exported_checkpoint": final.name,
    }
    finishing = meter.read()
    t["finishing_kj"] = finishing.joules / 1e3
    invocations = state.get("invocations", [])
    resumed_note = (f" (the command ran {len(invocations)} times: resumed {len(invocations) - 1} time(s))"
                    if len(invocations) > 1 else "")
    card = {
        "bundle": str(opts.out), "kind": "model", "base_checkpoint": str(opts.base_checkpoint),
        "base_table_label": "the shipped table" if opts.base_bundle is None else "the base bundle's table",
        "audio": _audio_card(plan["scan"], plan["holdout"], train, valid, plan.get("fit")),
        "training": t,
        "quality": {"clips": len(clips), "seconds": sum(a.size for _, a in clips) / cfg.audio.sample_rate,
                    "before": before, "after": after, "method": after["method"],
                    "before_label": "shipped model" if opts.base_bundle is None else "base bundle",
                    "before_bundle": str(base_dir)},
        "nb": nb_card(tables),
        "parity": {k: par[k] for k in ("make_bundle_passed", "max_abs_err_logmag", "code_agreement")},
        "wall_minutes": (time.perf_counter() - t0) / 60, "resumed_note": resumed_note,
    }
    m = json.loads((bdir / "manifest.json").read_text())
    m.setdefault("export", {})["parity"] = par
    m["make_bundle"] = {"kind": "model", "folder": str(plan["scan"].root.resolve()),
                        "held_out": plan["holdout"].names or plan["holdout"].note, "card": card}
    write_manifest(bdir, m)
    load_bundle(bdir)
    text = format_card(card)
    (bdir / "card.txt").write_text(text.lstrip("\n") + "\n")
    (bdir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    install_bundle(bdir, opts.out)
    state["phase"] = "done"
    state["finished"] = now_iso()
    _write_json(work / STATE_FILE, state)
    shutil.rmtree(work / "data", ignore_errors=True)  # the staged audio (the checkpoints stay)
    say(text)
    say(f"(work folder {work} keeps the checkpoints; delete it when you are done with this bundle)")
    return 0
