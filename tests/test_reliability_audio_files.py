"""`vqblur process` on hostile audio files: a clear error or a correct output, never a crash.

Correct output = same sample rate, length and channel count as the input, every sample finite
and within [-1, 1]. A clear error = exit code 2, one line ``vqblur process: error: ...`` on
stderr naming the file, no traceback, and no output file (not even a half-written one).

Everything is generated in tmp_path with soundfile/numpy; files are short (<= 1 s) except the
minute of silence. The command runs in-process (``vqblur.cli.main``): an unhandled exception
fails the test the same way a traceback would; one subprocess test checks the real CLI.

With ``--mix 0`` the output is the latency-compensated dry signal, so at the bundle's rate it
must equal the input (to the file's quantisation): that checks channel order, alignment and
length, not just "something came out".
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.toy_bundle import make_toy_bundle
from vqblur.cli import main

SR = 48000  # the toy bundle's rate
HOSTILE = ["--zone-size", "1", "--temperature", "1", "--centre", "0.3", "--mix", "1"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_bundle(tmp_path_factory.mktemp("toy") / "toy")


def _process(toy, src, out, *extra):
    return main(["process", str(src), str(out), "--bundle", str(toy), "--quiet", *map(str, extra)])


def _assert_clear_error(capsys, rc, *names):
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vqblur process: error:"), err
    assert "Traceback" not in err
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def _assert_correct(src, out):
    i, o = sf.info(str(src)), sf.info(str(out))
    assert (o.samplerate, o.channels, o.frames) == (i.samplerate, i.channels, i.frames)
    y, _ = sf.read(str(out), dtype="float64", always_2d=True)
    assert y.shape == (i.frames, i.channels)
    assert np.isfinite(y).all()
    assert np.max(np.abs(y), initial=0.0) <= 1.0
    return y


def _no_leftovers(folder, keep=()):
    left = [p.name for p in folder.iterdir() if p.name not in keep]
    assert not [n for n in left if n.endswith(".partial")], left
    return left


def _tone(n, channels=1, sr=SR, amp=0.5):
    t = np.arange(n) / sr
    cols = [amp * np.sin(2 * np.pi * (220 * (c + 1)) * t + c) for c in range(channels)]
    return np.stack(cols, 1)


# --------------------------------------------------------------------------- damaged input
def _wav_bytes(tmp_path):
    p = tmp_path / "_ref.wav"
    sf.write(p, _tone(4800), SR, subtype="PCM_16")
    b = p.read_bytes()
    p.unlink()
    return b


CORRUPT = {
    "empty_0_bytes.wav": lambda b: b"",
    "random_bytes.wav": lambda b: np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes(),
    "header_only.wav": lambda b: b[:30],
    "riff_no_data_chunk.wav": lambda b: b[:36],
    "text.wav": lambda b: b"this is not audio\n" * 20,
    "wav_with_flac_name.flac": lambda b: b[:44] + b"\x00" * 10,
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_or_empty_file_is_a_clear_error(toy, tmp_path, capsys, name):
    src = tmp_path / name
    src.write_bytes(CORRUPT[name](_wav_bytes(tmp_path)))
    out = tmp_path / "out.wav"
    rc = _process(toy, src, out)
    if rc == 0:  # libsndfile may read a tiny header-only file as valid: then it must be correct
        _assert_correct(src, out)
        return
    _assert_clear_error(capsys, rc, src)
    assert not out.exists()
    _no_leftovers(tmp_path, keep={name})


def test_zero_length_file_is_a_clear_error(toy, tmp_path, capsys):
    src = tmp_path / "zero.wav"
    sf.write(src, np.zeros((0, 2)), SR, subtype="PCM_16")
    assert sf.info(str(src)).frames == 0
    out = tmp_path / "out.wav"
    line = _assert_clear_error(capsys, _process(toy, src, out), src)
    assert "no audio samples" in line
    assert not out.exists()


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_damaged_compressed_file_is_an_error_or_correct_and_leaves_nothing_half_written(
        toy, tmp_path, capsys, ext):
    good = tmp_path / f"good.{ext}"
    sf.write(good, _tone(24000, 2), SR)
    b = bytearray(good.read_bytes())
    rng = np.random.default_rng(1)
    for i in rng.integers(len(b) // 4, len(b), 200):
        b[i] ^= 0xFF
    for name, data in ((f"flipped.{ext}", bytes(b)), (f"cut.{ext}", good.read_bytes()[: len(b) // 2])):
        src = tmp_path / name
        src.write_bytes(data)
        out = tmp_path / f"out_{name}.wav"
        out.write_bytes(b"previous render")  # an earlier output must survive a failed render
        rc = _process(toy, src, out)
        if rc == 0:
            _assert_correct(src, out)
        else:
            _assert_clear_error(capsys, rc, src)
            assert out.read_bytes() == b"previous render"
        _no_leftovers(tmp_path)


def test_wav_whose_data_was_cut_renders_what_is_there(toy, tmp_path):
    full = tmp_path / "full.wav"
    sf.write(full, _tone(4800), SR, subtype="PCM_16")
    src = tmp_path / "cut.wav"
    src.write_bytes(full.read_bytes()[: 44 + 2 * 3000 + 1])  # header still claims 4800 samples
    out = tmp_path / "out.wav"
    assert _process(toy, src, out, "--mix", "0") == 0
    y = _assert_correct(src, out)
    x, _ = sf.read(str(src), always_2d=True)
    assert len(y) == len(x) and np.max(np.abs(y - x)) <= 2 / 32768


# --------------------------------------------------------------------------- sizes and formats
def test_one_sample_file(toy, tmp_path):
    src = tmp_path / "one.wav"
    sf.write(src, np.array([[0.5]]), SR, subtype="FLOAT")
    for i, args in enumerate((["--mix", "0"], HOSTILE)):
        out = tmp_path / f"out{i}.wav"
        assert _process(toy, src, out, *args) == 0
        y = _assert_correct(src, out)
        if i == 0:
            assert abs(y[0, 0] - 0.5) < 1e-6


@pytest.mark.parametrize(
    "ext,subtype,lsb",
    [
        ("wav", "PCM_U8", 1 / 128),
        ("aiff", "PCM_S8", 1 / 128),
        ("wav", "PCM_16", 1 / 32768),
        ("wav", "PCM_24", 1 / 2**23),
        ("flac", "PCM_24", 1 / 2**23),
        ("wav", "PCM_32", 1 / 2**31),
        ("wav", "FLOAT", 1e-7),
        ("wav", "DOUBLE", 1e-7),
    ],
)
def test_bit_depths_keep_subtype_and_dry_signal(toy, tmp_path, ext, subtype, lsb):
    x = _tone(12000, 2)
    src = tmp_path / f"in.{ext}"
    sf.write(src, x, SR, subtype=subtype)
    xq, _ = sf.read(str(src), always_2d=True)
    out = tmp_path / f"out.{ext}"
    assert _process(toy, src, out, "--mix", "0") == 0
    y = _assert_correct(src, out)
    assert sf.info(str(out)).subtype == subtype
    assert np.max(np.abs(y - xq)) <= 2 * lsb + 1e-6
    # and wet, with the knobs at their extremes
    out2 = tmp_path / f"wet.{ext}"
    assert _process(toy, src, out2, *HOSTILE) == 0
    _assert_correct(src, out2)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 6, 8])
def test_channel_counts_keep_order_and_alignment(toy, tmp_path, channels):
    x = _tone(6000, channels, amp=0.3)
    src = tmp_path / "in.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert _process(toy, src, out, "--mix", "0") == 0
    y = _assert_correct(src, out)
    assert np.max(np.abs(y - x)) <= 1e-6  # every channel in its place, latency compensated
    out2 = tmp_path / "wet.wav"
    assert _process(toy, src, out2, "--zone-size", "0.5", "--temperature", "0.8") == 0
    _assert_correct(src, out2)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000,
                                  176400, 192000])
def test_sample_rates_8k_to_192k(toy, tmp_path, rate):
    n = rate // 2
    x = _tone(n, 2, sr=rate, amp=0.4)  # 220 / 440 Hz: inside every rate's band
    src = tmp_path / "in.wav"
    sf.write(src, x, rate, subtype="PCM_24")
    out = tmp_path / "out.wav"
    assert _process(toy, src, out, "--mix", "0") == 0
    y = _assert_correct(src, out)
    # dry path through the resamplers (when rate != 48 kHz): the tone comes back aligned
    mid = slice(n // 5, n - n // 5)
    assert np.max(np.abs(y[mid] - x[mid])) < 2e-3, rate
    out2 = tmp_path / "wet.wav"
    assert _process(toy, src, out2, *HOSTILE) == 0
    _assert_correct(src, out2)


@pytest.mark.parametrize("rate", [1, 100, 2_000_000])
def test_absurd_sample_rates_are_refused(toy, tmp_path, capsys, rate):
    src = tmp_path / "in.wav"
    sf.write(src, np.zeros(max(1, rate // 1000)), rate, subtype="FLOAT")
    line = _assert_clear_error(capsys, _process(toy, src, tmp_path / "out.wav"), src)
    assert "sample rate" in line


# --------------------------------------------------------------------------- hostile content
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_nan_and_inf_samples_give_finite_output(toy, tmp_path, subtype):
    x = _tone(9600, 2, amp=0.3)
    x[1000:1500, 0] = np.nan
    x[2000, 1] = np.inf
    x[2001, 1] = -np.inf
    x[5000:5003] = np.nan
    src = tmp_path / "in.wav"
    sf.write(src, x, SR, subtype=subtype)
    out = tmp_path / "dry.wav"
    assert _process(toy, src, out, "--mix", "0") == 0
    y = _assert_correct(src, out)
    clean = np.where(np.isfinite(x), x, 0.0)
    assert np.max(np.abs(y - clean)) <= 1e-6  # bad samples became silence, the rest is intact
    for i, args in enumerate((HOSTILE, ["--zone-size", "0"])):
        out2 = tmp_path / f"wet{i}.wav"
        assert _process(toy, src, out2, *args) == 0
        _assert_correct(src, out2)


def test_nan_at_a_resampled_rate(toy, tmp_path):
    x = _tone(4410, 1, sr=44100, amp=0.3)
    x[::7] = np.nan
    src = tmp_path / "in.wav"
    sf.write(src, x, 44100, subtype="FLOAT")
    out = tmp_path / "out.wav"
    assert _process(toy, src, out, *HOSTILE) == 0
    _assert_correct(src, out)


@pytest.mark.parametrize("level", [1.0, -1.0, 0.5])
def test_dc(toy, tmp_path, level):
    src = tmp_path / "dc.wav"
    sf.write(src, np.full((SR, 1), level), SR, subtype="PCM_24")
    for i, args in enumerate((["--zone-size", "0"], HOSTILE, ["--mix", "0.5"])):
        out = tmp_path / f"out{i}.wav"
        assert _process(toy, src, out, *args) == 0
        _assert_correct(src, out)


@pytest.mark.parametrize("subtype,amp", [("PCM_16", 1.0), ("FLOAT", 1.0), ("FLOAT", 8.0)])
def test_full_scale_clipping_square_wave(toy, tmp_path, subtype, amp):
    n = SR // 2
    sq = amp * np.sign(np.sin(2 * np.pi * 100 * np.arange(n) / SR))
    x = np.stack([sq, -sq], 1)
    src = tmp_path / "sq.wav"
    sf.write(src, x, SR, subtype=subtype)
    for i, args in enumerate((["--zone-size", "0"], HOSTILE, ["--mix", "0.5", "--zone-size", "0.3"])):
        out = tmp_path / f"out{i}.wav"
        assert _process(toy, src, out, *args) == 0
        y = _assert_correct(src, out)
        assert np.max(np.abs(y)) > 0.1


_RSS_RUN = (
    "import resource, sys\n"
    "from vqblur.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def _peak_rss_kb(toy, src, out):
    r = subprocess.run([sys.executable, "-c", _RSS_RUN, "process", str(src), str(out),
                        "--bundle", str(toy), "--quiet", "--zone-size", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("maxrss_kb")[1].split()[0])


def test_a_minute_of_silence_in_bounded_memory(toy, tmp_path):
    """A minute of silence comes out as a minute of silence, and the render streams: its peak
    memory is that of a one-second file (the file is never read whole)."""
    src = tmp_path / "silence.wav"
    sf.write(src, np.zeros((60 * SR, 1), np.int16), SR, subtype="PCM_16")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros((SR, 1), np.int16), SR, subtype="PCM_16")
    out = tmp_path / "out.wav"
    rss_long = _peak_rss_kb(toy, src, out)
    y = _assert_correct(src, out)
    assert np.max(np.abs(y)) <= 1e-4  # silence in, silence out (zone 0)
    rss_short = _peak_rss_kb(toy, short, tmp_path / "short_out.wav")
    # 60 s of mono float64 would be 23 MB if it were held: allow allocator noise only
    assert rss_long - rss_short < 12_000, (rss_short, rss_long)


# --------------------------------------------------------------------------- path errors
def test_path_errors_are_clear(toy, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(2000), SR, subtype="PCM_16")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        ((tmp_path / "missing.wav", tmp_path / "o.wav"), "input file not found"),
        ((folder, tmp_path / "o.wav"), "is a folder"),
        ((good, tmp_path / "o.xyz"), "unknown output format"),
        ((good, tmp_path / "noext"), "no extension"),
        ((good, tmp_path / "nope" / "o.wav"), "does not exist"),
        ((good, folder), "is a folder"),
        ((good, good), "overwrite the input"),
        ((tmp_path / "." / "good.wav", good), "overwrite the input"),
    ]
    for (src, out), want in cases:
        line = _assert_clear_error(capsys, _process(toy, src, out))
        assert want in line, (src, out, line)
    assert sorted(_no_leftovers(tmp_path)) == ["folder", "good.wav"]


def test_unsupported_input_format_is_clear(toy, tmp_path, capsys):
    src = tmp_path / "notes.txt"
    src.write_text("hello\n")
    line = _assert_clear_error(capsys, _process(toy, src, tmp_path / "o.wav"), src)
    assert "cannot read audio" in line


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_input_and_unwritable_output_folder(toy, tmp_path, capsys):
    src = tmp_path / "locked.wav"
    sf.write(src, _tone(2000), SR, subtype="PCM_16")
    src.chmod(0)
    try:
        line = _assert_clear_error(capsys, _process(toy, src, tmp_path / "o.wav"), src)
        assert "permission denied" in line
    finally:
        src.chmod(0o644)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _assert_clear_error(capsys, _process(toy, src, ro / "o.wav"))
        assert "permission denied" in line
    finally:
        ro.chmod(0o755)


def test_interrupted_render_leaves_no_partial_output(toy, tmp_path, monkeypatch, capsys):
    """Ctrl-C half way: exit 130, the previous OUT untouched, no temporary file left."""
    from vqblur.engine.core import Engine

    src = tmp_path / "in.wav"
    sf.write(src, _tone(SR), SR, subtype="PCM_16")
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous render")
    calls = {"n": 0}
    orig = Engine.process

    def flaky(self, block):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return orig(self, block)

    monkeypatch.setattr(Engine, "process", flaky)
    assert _process(toy, src, out) == 130
    assert out.read_bytes() == b"previous render"
    assert sorted(_no_leftovers(tmp_path)) == ["in.wav", "out.wav"]


def test_real_cli_corrupt_file_no_traceback(toy, tmp_path):
    src = tmp_path / "bad.wav"
    src.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    r = subprocess.run([sys.executable, "-m", "vqblur", "process", str(src), str(tmp_path / "o.wav"),
                        "--bundle", str(toy)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("vqblur process: error:") and "Traceback" not in r.stderr
    assert str(src) in r.stderr


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_output_to_dev_null_keeps_the_device(toy, tmp_path):
    """Rendering to /dev/null (a benchmark habit) works and must not replace the device node
    with a regular file (the render goes to a temporary file + rename only for regular files)."""
    import stat

    src = tmp_path / "in.wav"
    sf.write(src, _tone(4800), SR, subtype="PCM_16")
    assert _process(toy, src, "/dev/null") == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("opt", [
    ["--block", "0"], ["--block", "100000000000000"], ["--block", "x"], ["--seed", "-1"],
    ["--seed", "1.5"], ["--zone-size", "2"], ["--zone-size", "nan"], ["--mix", "-0.1"],
    ["--temperature", "inf"], ["--threads", "0"], ["--threads", "100000"],
])
def test_hostile_options_are_usage_errors(toy, tmp_path, capsys, opt):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(2000), SR, subtype="PCM_16")
    with pytest.raises(SystemExit) as ei:
        _process(toy, src, tmp_path / "out.wav", *opt)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vqblur process: error: {opt[0]}") and "Traceback" not in err
    assert err.count("\n") == 1 and err.count(opt[0]) == 1 and "usage:" not in err
    assert not (tmp_path / "out.wav").exists()


def test_large_seed_and_block_are_fine(toy, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(3000), SR, subtype="PCM_16")
    out = tmp_path / "out.wav"
    assert _process(toy, src, out, "--seed", str(10**30), "--block", str(1 << 20),
                    "--zone-size", "0.5") == 0
    _assert_correct(src, out)


def test_sigterm_mid_render_leaves_nothing_behind(toy, tmp_path):
    """A batch job killed with SIGTERM: exit 143, no OUT, no temporary file."""
    import signal
    import time

    src = tmp_path / "long.wav"
    sf.write(src, np.zeros((60 * SR, 2), np.int16), SR, subtype="PCM_16")
    out = tmp_path / "out.wav"
    p = subprocess.Popen([sys.executable, "-m", "vqblur", "process", str(src), str(out),
                          "--bundle", str(toy), "--quiet"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(f.name.endswith(".partial") for f in tmp_path.iterdir()):
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "Traceback" not in err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["long.wav"]


def test_output_through_a_symlink_replaces_its_target(toy, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(3000), SR, subtype="PCM_16")
    real = tmp_path / "renders"
    real.mkdir()
    (real / "take.wav").write_bytes(b"old")
    link = tmp_path / "latest.wav"
    link.symlink_to(real / "take.wav")
    assert _process(toy, src, link, "--mix", "0") == 0
    assert link.is_symlink()
    _assert_correct(src, real / "take.wav")
    assert not [p for p in real.iterdir() if p.name.endswith(".partial")]
