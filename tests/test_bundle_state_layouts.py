"""Bundles keep loading when the exporter changes how it lays out the streaming state: a bundle
exported with the previous layout (each causal conv's past columns on the time axis,
``[1, C, H, h]``) and one with today's (stacked along channels, ``[1, h * C, H, 1]``) run in
the engine and give the same audio, since the engine only reads the state shapes from the
manifest."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from vqblur.engine.bundle import load_bundle  # noqa: E402
from vqblur.engine.core import Engine, Params  # noqa: E402
from vqblur.export import onnx_export  # noqa: E402
from vqblur.export.bundle_writer import export_bundle  # noqa: E402
from vqblur.export.testing import TINY_V2, harmonic_signal, make_nb_table, make_tiny_checkpoint  # noqa: E402


def test_previous_state_layout_still_runs_and_sounds_the_same(tmp_path, monkeypatch):
    ckpt = make_tiny_checkpoint(tmp_path / "run", **TINY_V2)
    nb = make_nb_table(tmp_path / "nb_table.npz", rows=20, K=32)
    nbm = make_nb_table(tmp_path / "nb_macro.npz", rows=5, K=32, seed=1)
    new = load_bundle(export_bundle(ckpt, nb, tmp_path / "stacked", nb_macro_path=nbm))
    monkeypatch.setitem(onnx_export.DEFAULT_REWRITES, "causal", "noslice")
    old = load_bundle(export_bundle(ckpt, nb, tmp_path / "previous", nb_macro_path=nbm))

    # the layouts differ where a conv remembers more than one column (dilation 3)
    new_shapes = [s.shape for s in new.encoder_states + new.decoder_states]
    old_shapes = [s.shape for s in old.encoder_states + old.decoder_states]
    assert any(s[-1] > 1 for s in old_shapes) and all(s[-1] == 1 for s in new_shapes)
    assert [int(np.prod(s)) for s in old_shapes] == [int(np.prod(s)) for s in new_shapes]

    x = harmonic_signal(1.5, 48000, seed=3)
    outs = []
    for b in (old, new):
        eng = Engine(b, Params(zone_size=0.3, detail=1.0), seed=5)
        outs.append(np.concatenate([eng.process(x[i:i + 128]) for i in range(0, len(x), 128)]))
    assert np.abs(outs[0]).max() > 0.05
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)
