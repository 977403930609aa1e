"""make-bundle's chunked encoding (vqblur.make_bundle.encode_maps) gives the whole clip's codes,
on the one-window framing and on codec v5's split framing (whose long window needs 1200
samples of history in each chunk, not 240)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vqblur.export.testing import TINY_V5_AUDIO, TINY_V5_MODEL, harmonic_signal, tiny_config  # noqa: E402
from vqblur.make_bundle import encode_maps  # noqa: E402
from vqblur.training.features import log_magnitude  # noqa: E402
from vqblur.training.model import VQVAE  # noqa: E402


@pytest.mark.parametrize("split", [False, True], ids=["v3 framing", "split framing"])
def test_chunked_codes_equal_the_whole_clips(split):
    cfg = tiny_config(audio=TINY_V5_AUDIO, **TINY_V5_MODEL) if split else tiny_config()
    torch.manual_seed(0)
    model = VQVAE(cfg).eval()
    x = harmonic_signal(1.2, seed=3).astype(np.float32)
    micro, macro = encode_maps(model, cfg, x, chunk_columns=37, context=16)
    with torch.no_grad():
        whole = model.encode_all(log_magnitude(torch.from_numpy(x)[None], cfg.audio))
    ref = whole.micro[0, 0].numpy()
    n = min(ref.shape[1], micro.shape[1])
    assert n > 100
    assert np.array_equal(micro[:, :n], ref[:, :n])
