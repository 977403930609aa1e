"""The shipped default bundle: found from any directory, verified, and it actually codes audio."""

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from vqblur.engine.bundle import default_bundle_path, load_bundle
from vqblur.engine.core import Engine, Params
from vqblur.common.spectral import audio_quality


def test_default_bundle_is_found_from_another_directory(tmp_path):
    code = ("import json; from vqblur.engine.bundle import load_default_bundle; b = load_default_bundle(); "
            "print(json.dumps({'rows': b.rows, 'K': b.codebook_size, 'latency': b.latency_samples}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["latency"] < 480  # under 10 ms at 48 kHz
    assert info["rows"] > 1 and info["K"] > 1


def test_default_bundle_records_its_training_and_size():
    bundle = load_bundle(default_bundle_path())
    training = bundle.manifest["training"]
    assert training["config"]["model"]["codebook_size"] == bundle.codebook_size
    size_mb = sum(p.stat().st_size for p in bundle.root.iterdir()) / 1e6
    assert size_mb <= 20.0


def test_default_bundle_reconstructs_the_demo_clip():
    """Zone 0 through the streaming engine: the codec alone must resemble its input."""
    import importlib.resources

    clip = importlib.resources.files("vqblur.presets") / "clips" / "demo.wav"
    audio, sr = sf.read(str(clip), dtype="float32")
    audio = audio[: 2 * sr]
    engine = Engine(load_bundle(default_bundle_path()), Params(zone_size=0.0, mix=1.0, detail=0.0))
    D = engine.latency_samples
    y = engine.process(np.concatenate([audio, np.zeros(D, np.float32)]))[D:]
    q = audio_quality(audio, y)
    assert q["sc_db"] < -6.0, q  # a trained codec, not noise (an untrained one sits near 0 dB)
    assert np.isfinite(y).all()


def test_default_bundle_is_codec_v2_and_reconstructs_well():
    """The shipped model is codec v2 (format 2: a macro map, residual micro levels, a batched
    decoder, both NB tables) and its pure codec (detail 0) is close to its input: far better
    than v1's -14.8 dB on the GM test split (here the demo clip, 2 s)."""
    import importlib.resources

    bundle = load_bundle(default_bundle_path())
    assert bundle.format_version == 2 and bundle.decoder_batched
    assert bundle.levels >= 2 and bundle.rows_macro > 0 and bundle.nb_macro_path is not None
    macs = bundle.manifest["macs_per_column"]
    assert macs["encoder_plus_two_decodes"] <= 5_000_000  # the design budget (docs/CODEC.md)
    clip = importlib.resources.files("vqblur.presets") / "clips" / "demo.wav"
    audio, sr = sf.read(str(clip), dtype="float32")
    audio = audio[: 2 * sr]
    engine = Engine(bundle, Params(zone_size=0.0, mix=1.0, detail=0.0))
    D = engine.latency_samples
    y = engine.process(np.concatenate([audio, np.zeros(D, np.float32)]))[D:]
    q = audio_quality(audio, y)
    assert q["sc_db"] < -15.0, q
    assert abs(q["level_change_db"]) < 1.0, q
