"""Progress bars are drawn on a terminal only: in a log (stderr not a terminal) there is no bar,
no carriage return, and the summary lines each start on a line of their own."""

import io
import os
import pty
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.common.progress import is_terminal, progress_bar, progress_iter


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    src = tmp_path_factory.mktemp("audio") / "in.wav"
    t = np.arange(48000) / 48000
    sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t), 48000)
    return src


@pytest.mark.parametrize("command", ["process", "blur"])
def test_log_has_no_bar_and_clean_lines(toy, wav, tmp_path, command):
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "-m", "vqblur", command, str(wav), str(tmp_path / "o.wav"),
                            "--bundle", str(toy)], stdout=f, stderr=subprocess.STDOUT, timeout=180)
    text = log.read_text()
    assert r.returncode == 0, text
    assert "\r" not in text and "\x1b[" not in text
    assert "sample/s" not in text and "%|" not in text
    lines = text.splitlines()
    assert lines[0].startswith(f"vqblur {command}: ")
    assert all(not line or line.startswith("  ") for line in lines[1:]), lines  # each on its own line


def test_terminal_gets_a_bar_that_clears_its_line(toy, wav, tmp_path):
    """On a (pseudo-)terminal the bar is drawn, and it clears its line when it closes, so the
    summary after it starts at the beginning of a clean line."""
    import fcntl
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # child: stdin/stdout/stderr are the pty; give it a width, as a terminal has
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.execv(sys.executable, [sys.executable, "-m", "vqblur", "process", str(wav),
                                  str(tmp_path / "o.wav"), "--bundle", str(toy), "--block", "64"])
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "process: " in text and "%|" in text and "sample/s" in text, text  # the bar was drawn
    i = text.index("  wrote ")
    cleared = text[:i].rsplit("\r", 2)  # [..., the last bar, blanks that wipe it, ""]
    assert cleared[-1] == "" and cleared[-2].strip() == "" and "%|" in cleared[-3], repr(text[i - 200 : i])


def test_helper_follows_the_stream():
    class FakeTty(io.StringIO):
        def isatty(self):
            return True

    assert not is_terminal(io.StringIO())
    assert progress_bar(10, desc="x", file=io.StringIO()).disable
    assert not progress_bar(10, desc="x", file=FakeTty()).disable
    assert progress_bar(10, desc="x", file=FakeTty(), quiet=True).disable
    assert list(progress_iter([1, 2, 3], desc="x")) == [1, 2, 3]
