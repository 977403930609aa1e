"""DistributedDataParallel on 2 CPU processes (gloo): a few steps, replicas stay identical."""

import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_process_ddp_replicas_identical(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    env = dict(os.environ, VQBLUR_DATA=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    out = tmp_path / "run"
    cmd = [torchrun, "--standalone", "--nproc-per-node=2", "-m", "vqblur", "train",
           "--config", "training/configs/tiny.toml", "--set", "train.steps=6", "--set", "data.train_count=8",
           "--set", "vq.restart_every=2", "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert len(summary["replica_sha256"]) == 2
    assert summary["replicas_identical"], summary["replica_sha256"]
