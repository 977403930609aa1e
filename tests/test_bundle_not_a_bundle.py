"""`--bundle` pointing at a folder that is not a bundle says so, in one line, exit code 2."""

import subprocess
import sys

import numpy as np
import soundfile as sf


def test_folder_without_manifest_is_not_a_bundle(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(4800, np.float32), 48000)
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model\n")
    r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(src), str(tmp_path / "o.wav"),
                        "--bundle", str(folder)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == (f"vqblur process: error: {folder}: not a vqblur bundle "
                        f"(no manifest.json in {folder})\n")
    assert not (tmp_path / "o.wav").exists()
