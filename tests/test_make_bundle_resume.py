"""Kill `vqblur make-bundle` mid-training (SIGKILL, no chance to clean up), run the same command
again: it says what it resumed, the step count continues from the last checkpoint (at most one
checkpoint interval lost), and the bundle it finishes passes the same checks. A changed folder or
mode is refused, never restarted silently."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.make_bundle_fixtures import REPO, make_base, make_folder, run_cli

EVERY = 25


def _checkpoint_step(run) -> int:
    import torch

    p = run / "checkpoint.pt"
    if not p.is_file():
        return -1
    try:
        return int(torch.load(p, map_location="cpu", weights_only=False)["step"])
    except Exception:  # being replaced right now
        return -1


def test_kill_and_resume(tmp_path):
    folder = make_folder(tmp_path / "sounds", extras=False)
    ckpt, base = make_base(tmp_path / "base")
    out = tmp_path / "out"
    args = ["make-bundle", str(folder), "--out", str(out), "--minutes", "0.4", "--eval-every", str(EVERY),
            "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    proc = subprocess.Popen([sys.executable, "-m", "vqblur.cli", *args], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = tmp_path / "out.work" / "run"
    deadline = time.monotonic() + 120
    try:
        while _checkpoint_step(run) < 2 * EVERY:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        first = proc.communicate()[0]
    killed_at = _checkpoint_step(run)
    assert killed_at >= 2 * EVERY and "summary.json" not in os.listdir(run), first
    assert not out.exists()  # nothing half-made in --out

    # a different mode is refused (no silent restart), and so is a changed folder
    r = run_cli(args + ["--from-scratch"])
    assert r.returncode == 2 and "is a fine-tune run" in r.stderr and "--restart" in r.stderr
    extra = folder / "new.wav"
    extra.write_bytes((folder / "a" / "amen.wav").read_bytes())
    r = run_cli(args)
    assert r.returncode == 2 and "has changed since the run" in r.stderr and "added: new.wav" in r.stderr
    extra.unlink()
    assert _checkpoint_step(run) == killed_at

    r = run_cli(args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"from its last checkpoint, step {killed_at}" in r.stdout, r.stdout
    starts = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
              if '"event": "start"' in line]
    assert [s["step"] for s in starts] == [0, killed_at]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    second = [i for i, rec in enumerate(records) if rec.get("event") == "start"][1]
    resumed = [rec["step"] for rec in records[second:] if rec.get("event") == "step"]
    assert resumed and min(resumed) > killed_at  # the count continues, it does not restart at 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] > killed_at
    # the finished bundle passes the same checks as an unbroken run's
    from vqblur.engine.bundle import load_bundle

    b = load_bundle(out)
    assert b.manifest["export"]["parity"]["make_bundle_passed"]
    assert "== vqblur bundle card" in r.stdout and "resumed 1 time(s)" in r.stdout


def test_restart_starts_over(tmp_path):
    """--restart discards a work folder's run, and says so."""
    folder = make_folder(tmp_path / "sounds", extras=False)
    ckpt, base = make_base(tmp_path / "base")
    work = tmp_path / "out.work"
    (work / "run").mkdir(parents=True)
    (work / "state.json").write_text("{}")
    r = run_cli(["make-bundle", str(folder), "--out", str(tmp_path / "out"), "--minutes", "0.02",
                 "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet"])
    assert r.returncode == 2 and "another version of make-bundle" in r.stderr
    r = run_cli(["make-bundle", str(folder), "--out", str(tmp_path / "out"), "--minutes", "0.02",
                 "--base-checkpoint", str(ckpt), "--base-bundle", str(base), "--quiet", "--restart"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--restart: removing the work folder" in r.stdout
    assert (tmp_path / "out" / "manifest.json").is_file()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
