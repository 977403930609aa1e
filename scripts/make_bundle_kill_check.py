#!/usr/bin/env python3
"""Kill `vqblur make-bundle` at random points and rerun it until it finishes (docs/OWN_SOUNDS.md).

    python scripts/make_bundle_kill_check.py FOLDER OUT [--minutes 6] [--kills 3] [--seed 0] [-- extra args]

Each round starts the same command, waits a random time (uniform over the expected length of a
run, so a kill can land in reading, training or finishing), sends SIGKILL and notes where it
was: the last step logged in metrics.jsonl against the step of the checkpoint a rerun resumes
from (the training lost). After the kills it lets the command finish, then checks the bundle
as an unbroken run's is checked: it loads (hashes, shapes, a trial step), its parity passed,
its card is there. Prints one line per kill and the verdict; exit 1 when something fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _last_logged_step(run: Path) -> int:
    step = 0
    try:
        for line in (run / "metrics.jsonl").read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("event") == "step":
                step = max(step, int(rec["step"]))
    except OSError:
        pass
    return step


def _checkpoint_step(run: Path) -> int | None:
    p = run / "checkpoint.pt"
    if not p.is_file():
        return None
    import torch

    return int(torch.load(p, map_location="cpu", weights_only=False)["step"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--expected-minutes", type=float, default=None,
                    help="how long one unbroken run takes (default: --minutes + 2.5)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    a.extra = extra
    rng = random.Random(a.seed)
    out = Path(a.out).absolute()
    run = out.parent / f"{out.name}.work" / "run"
    cmd = [sys.executable, "-m", "vqblur.cli", "make-bundle", a.folder, "--out", str(out),
           "--minutes", str(a.minutes), "--quiet", *a.extra]
    expected = 60 * (a.expected_minutes or a.minutes + 2.5)
    ok = True
    t_all = time.monotonic()
    for k in range(a.kills):
        wait = rng.uniform(5.0, expected)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            p.wait(timeout=wait)
            text = p.stdout.read()
            said = next((ln for ln in text.splitlines() if ln.startswith("resuming")), "")
            print(f"kill {k + 1}: the command finished before the kill ({time.monotonic() - t0:.0f} s, exit "
                  f"{p.returncode}){'; it had said: ' + said if said else ''}")
            break
        except subprocess.TimeoutExpired:
            logged = _last_logged_step(run)
            p.send_signal(signal.SIGKILL)
            text = p.communicate()[0]
        ck = _checkpoint_step(run)
        phase = ("finishing" if "training done" in text else "training" if "step" in text or ck is not None
                 else "reading/staging")
        lost = None if ck is None else max(0, logged - ck)
        resumed = [ln for ln in text.splitlines() if ln.startswith("resuming")]
        print(f"kill {k + 1} after {wait:.0f} s ({phase}): last step logged {logged}, checkpoint "
              f"{ck if ck is not None else '-'}: {lost if lost is not None else '-'} steps to redo"
              + (f"; that run had said: {resumed[0]}" if resumed else ""), flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True)
    print(f"final run: exit {r.returncode} after {time.monotonic() - t0:.0f} s; "
          + next((ln for ln in r.stdout.splitlines() if ln.startswith("resuming")), "(no resume line)"))
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        return 1
    from vqblur.engine.bundle import load_bundle

    b = load_bundle(out)
    par = b.manifest.get("export", {}).get("parity", {})
    ok = bool(par.get("make_bundle_passed")) and (out / "card.txt").is_file()
    print(f"bundle {out}: loads; parity {'passed' if par.get('make_bundle_passed') else 'FAILED'} "
          f"(max abs error {par.get('max_abs_err_logmag', float('nan')):.3g}, code agreement "
          f"{100 * par.get('code_agreement', 0):.3f} %); card {'present' if (out / 'card.txt').is_file() else 'MISSING'}")
    print(f"all rounds: {(time.monotonic() - t_all) / 60:.1f} min")
    print((out / "card.txt").read_text())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
