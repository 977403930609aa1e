"""A host block larger than the streaming STFT was sized for (``max_block``) grows its buffers
on the fly; nothing of the stream in flight is lost: the pending overlap-add, the output FIFO
and the silence phase carry continue as if the buffers had been large from the start."""

import numpy as np
import pytest

from vqblur.engine.dsp import SignalConfig
from vqblur.engine.split_stft import make_stft

V3 = SignalConfig()
V5 = SignalConfig(model_bins=190, long_n_fft=1280, crossover_hz=1500.0)  # the split framing


def _run(cfg: SignalConfig, x: np.ndarray, blocks: list[int], max_block: int, carry: bool) -> np.ndarray:
    st = make_stft(cfg, channels=1, max_block=max_block)
    st.carry_phase = carry
    out, pos = [], 0
    for n in blocks:
        st.push(x[pos:pos + n, None])
        pos += n
        while st.column_ready():
            lm = st.analyse_column().copy()
            lm[..., 2:12] += 0.5  # a change, so the output is not the input itself
            st.synthesise_column(lm)
        out.append(st.pull(n)[:, 0])
    return np.concatenate(out)


@pytest.mark.parametrize("cfg", [V3, V5], ids=["standard", "split"])
def test_a_block_past_max_block_changes_nothing(cfg):
    rng = np.random.default_rng(3)
    x = 0.3 * rng.standard_normal(12000)
    x[7000:8500] = 0.0  # digital silence inside: the carried phases must survive the growth
    blocks = [100, 160, 3000, 64, 4000, 300, 4376]  # the 3000 and 4000 pass max_block 256 twice
    for carry in (False, True):
        small = _run(cfg, x, [64] * (len(x) // 64) + [len(x) % 64], 4096, carry)
        grown = _run(cfg, x, blocks, 256, carry)
        np.testing.assert_allclose(grown, small, rtol=0, atol=1e-12)
