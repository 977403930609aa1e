"""The ``packed`` data source (`vqblur pack-data`): a training set in one file that trains where
nothing can be rendered or read (a lent GPU machine has no FluidSynth, soundfonts, soundfile or
soxr). The pack keeps its budget, stores the samples exactly (16-bit), shares the budget by the
groups' weights, keeps active stretches, and a run trains from it with numpy and torch alone."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vqblur.common.errors import UserError
from vqblur.training.data.clips import Clip
from vqblur.training.data.packed import read_pack, write_pack

SR = 48000


def _clips(n, seconds, seed, silent_head=0.0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        x = (0.3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
        x[: int(silent_head * SR)] = 0.0  # digital silence before the sound
        out.append(Clip(name=f"c{k}", audio=x))
    return out


def test_pack_roundtrip_budget_and_shares(tmp_path):
    groups = [_clips(40, 1.0, 0), _clips(40, 1.0, 1), _clips(40, 1.0, 2, silent_head=0.7)]
    valid = _clips(3, 1.5, 9)
    p = tmp_path / "pack.npz"
    meta = write_pack(p, groups, [0.5, 0.25, 0.25], valid, sample_rate=SR, max_mb=2.0,
                      excerpt_seconds=0.2, valid_seconds=1.0)
    assert p.stat().st_size <= 2.0e6
    got, weights, got_valid, meta2 = read_pack(p, SR)
    assert meta2 == meta and weights == [0.5, 0.25, 0.25]
    # the budget is shared by the weights (noise hardly compresses: the first group gets twice)
    s = np.array(meta["seconds"])
    assert s.min() > 0 and s[0] / s[1] == pytest.approx(2.0, rel=0.1) and s[1] / s[2] == pytest.approx(1.0, rel=0.1)
    # exact 16-bit samples of the input: each excerpt is a stretch of one clip (starts on a
    # quarter-excerpt grid)
    q = lambda x: (np.round(np.clip(x, -1, 32767 / 32768) * 32767) / 32767).astype(np.float32)
    n = int(0.2 * SR)
    stretches = [q(c.audio[i:i + n]) for c in groups[0] for i in range(0, c.audio.size - n + 1, n // 4)]
    for c in got[0][:5]:
        assert c.audio.size == n
        assert any(np.array_equal(c.audio, st) for st in stretches)
    # excerpts come from the sound, not the silence before it
    assert all(float(np.mean(c.audio ** 2)) > 1e-3 for c in got[2])
    # validation clips: their first second, in full
    assert len(got_valid) == 3 and all(c.audio.size == SR for c in got_valid)
    assert np.allclose(got_valid[0].audio, q(valid[0].audio[:SR]), atol=1e-7)


def test_pack_errors(tmp_path):
    g = [_clips(2, 1.0, 0)]
    with pytest.raises(UserError, match="no room"):
        write_pack(tmp_path / "p.npz", g, [1.0], _clips(4, 2.0, 1), sample_rate=SR, max_mb=0.1,
                   excerpt_seconds=0.2, valid_seconds=2.0)
    with pytest.raises(UserError, match="not found"):
        read_pack(tmp_path / "missing.npz", SR)
    (tmp_path / "bad.npz").write_bytes(b"not a pack")
    with pytest.raises(UserError, match="not a vqblur pack"):
        read_pack(tmp_path / "bad.npz", SR)
    write_pack(tmp_path / "ok.npz", g, [1.0], _clips(1, 1.0, 1), sample_rate=SR, max_mb=1.0,
               excerpt_seconds=0.2, valid_seconds=0.5)
    with pytest.raises(UserError, match="44100 Hz"):
        read_pack(tmp_path / "ok.npz", 44100)


BLOCKED = """
import sys
for m in ("soundfile", "soxr", "sounddevice", "rtmidi"):
    sys.modules[m] = None  # as on the GPU machine: none of them can be imported
from vqblur.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_train_from_a_pack_without_audio_libraries(tmp_path):
    p = tmp_path / "pack.npz"
    tones = []
    for k, f in enumerate((110.0, 220.0, 440.0, 880.0)):
        t = np.arange(SR) / SR
        tones.append(Clip(name=f"t{k}", audio=(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)))
    write_pack(p, [tones, _clips(4, 1.0, 3)], [0.5, 0.5], tones[:2], sample_rate=SR, max_mb=1.0,
               excerpt_seconds=0.3, valid_seconds=0.5)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", BLOCKED, "train", "--config", "training/configs/tiny.toml",
                        "--set", "data.source=packed", "--set", f"data.path={p}", "--set", "train.steps=12",
                        "--no-progress", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 12 and (out / "checkpoint.pt").is_file()
    start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert start["valid_clips"] == 2
    # a pack that is not there is a clear error, not a traceback
    r = subprocess.run([sys.executable, "-c", BLOCKED, "train", "--config", "training/configs/tiny.toml",
                        "--set", "data.source=packed", "--set", f"data.path={tmp_path / 'nope.npz'}",
                        "--out", str(tmp_path / "run2")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "pack-data" in r.stderr and "Traceback" not in r.stderr


BARE = r'''#!/usr/bin/env bash
# this interpreter without an installed vqblur (its editable finder dropped), as on the device
exec "{python}" -c "
import sys, runpy
sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]
sys.path_hooks[:] = [h for h in sys.path_hooks if 'editable' not in repr(h).lower()]
sys.path_importer_cache.clear()
sys.path[:] = [p for p in sys.path if not p.endswith('{repo}')]
for m in ('soundfile', 'soxr', 'sounddevice', 'rtmidi'):
    sys.modules[m] = None
a = sys.argv[1:]
if a[0] == '-m':
    sys.argv = a[1:]; runpy.run_module(a[1], run_name='__main__', alter_sys=True)
elif a[0] == '-c':
    sys.argv = ['-c'] + a[2:]; exec(compile(a[1], '<c>', 'exec'))
else:  # '-': the script on stdin, sys.argv as python gives it ('-', args...)
    sys.argv = a; exec(compile(sys.stdin.read(), '<stdin>', 'exec'))
" "$@"
'''


@pytest.mark.slow
def test_device_script_stages_the_package_and_resumes(tmp_path):
    """scripts/device_train.sh, as the GPU machine runs it: vqblur not installed (the script
    stages it from the checkout), no audio libraries; a second call resumes the first."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    py = tmp_path / "py"
    py.write_text(BARE.format(python=sys.executable, repo=str(repo)))
    py.chmod(0o755)
    r = subprocess.run([str(py), "-c", "import vqblur"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0  # the wrapper really hides the installed package
    pack = tmp_path / "pack.npz"
    write_pack(pack, [_clips(4, 1.0, 5)], [1.0], _clips(2, 1.0, 6), sample_rate=SR, max_mb=1.0,
               excerpt_seconds=0.3, valid_seconds=0.5)
    env = {"PATH": "/usr/bin:/bin", "PY": str(py), "OUT": str(tmp_path / "out"), "HOME": str(tmp_path)}
    script = str(repo / "scripts" / "device_train.sh")
    r = subprocess.run(["bash", script, "training/configs/tiny.toml", str(pack), "1", "--set", "train.steps=4"],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "vqblur from /tmp/vqblur_stage." in r.stdout
    run = tmp_path / "out" / "run"
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    r = subprocess.run(["bash", script, "training/configs/tiny.toml", str(pack), "1", str(run),
                        "--set", "train.steps=7"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["steps"] == 7
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines() if '"event": "step"' in l]
    assert min(s for s in steps if s > 4) == 5  # continued, not restarted


def test_pack_data_command_on_a_folder(tmp_path, capsys):
    import soundfile as sf

    from vqblur.cli import main

    folder = tmp_path / "sounds"
    folder.mkdir()
    for k, c in enumerate(_clips(6, 1.0, 11)):
        sf.write(folder / f"s{k}.wav", c.audio, SR, subtype="PCM_16")
    out = tmp_path / "p.npz"
    common = ["--config", "training/configs/tiny.toml", "--set", "data.source=folder",
              "--set", f"data.path={folder}"]
    assert main(["pack-data", str(out), *common, "--max-mb", "1", "--excerpt", "0.25"]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "data.source=packed" in said and out.stat().st_size <= 1e6
    groups, weights, valid, meta = read_pack(out, SR)
    assert len(groups) == 1 and weights == [1.0] and len(valid) >= 1
    assert meta["source"]["source"] == "folder" and meta["excerpts"][0] == len(groups[0])
    # an excerpt shorter than a training segment is refused
    assert main(["pack-data", str(tmp_path / "q.npz"), *common, "--excerpt", "0.01"]) == 2
    assert "training segment" in capsys.readouterr().err
