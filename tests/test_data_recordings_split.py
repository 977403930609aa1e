"""The packaged recordings' train/test split (common/recordings.py) and the `mix` data source's
sampler: whole files (and whole drum kits) are held out, the split does not depend on which
files exist, and the mix draws each group at its weight, reproducibly."""

from pathlib import Path

import numpy as np
import pytest

from vqblur.common.recordings import list_recordings, split_of
from vqblur.common.recordings import test_set as held_out_set  # (not a pytest test)


def _tree(root: Path, files: list[str]) -> Path:
    for f in files:
        p = root / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    return root


def test_split_is_by_name_and_stable(tmp_path):
    names = [f"s{i:03d}.flac" for i in range(200)]
    sp = _tree(tmp_path / "sp", names)
    hy = _tree(tmp_path / "hy", [f"kit{k}/hit{i}.wav" for k in range(12) for i in range(3)])
    recs = list_recordings(sonic_pi_root=sp, hydrogen_root=hy)
    test = [r for r in recs if r.split == "test"]
    assert 0.1 < len([r for r in test if r.package == "sonic-pi-samples"]) / 200 < 0.3
    # a file's split does not depend on the other files present
    fewer = list_recordings(sonic_pi_root=_tree(tmp_path / "sp2", names[::3]), hydrogen_root=hy)
    before = {r.key: r.split for r in recs}
    assert all(before[r.key] == r.split for r in fewer if r.package == "sonic-pi-samples")
    # a drum kit is held out whole
    for kit in {r.key for r in recs if r.package == "hydrogen-drumkits"}:
        assert len({r.split for r in recs if r.key == kit}) == 1
    assert {r.split for r in recs} <= {"train", "test"} and split_of("a") == split_of("a")


def test_packaged_test_set_is_never_in_train():
    test = held_out_set()
    if not test:
        pytest.skip("sonic-pi-samples not installed")
    train_paths = {r.path for r in list_recordings("train")}
    assert not train_paths & {r.path for r in test}
    assert len(test) >= 20  # a few dozen whole files


def test_mix_sampler_draws_each_group_at_its_weight():
    from vqblur.training.data.clips import Clip
    from vqblur.training.data.mix import MixSampler

    groups = [[Clip(f"g{g}", np.full(4000, g + 1, np.float32))] for g in range(3)]
    a = MixSampler(groups, 1000, seed=5, weights=[0.5, 0.3, 0.2]).sample(4000)
    b = MixSampler(groups, 1000, seed=5, weights=[0.5, 0.3, 0.2]).sample(4000)
    assert np.array_equal(a, b)
    share = np.bincount(a[:, 0].astype(int) - 1, minlength=3) / len(a)
    assert np.allclose(share, [0.5, 0.3, 0.2], atol=0.03), share
    only = MixSampler(groups, 1000, seed=1, weights=[0.0, 1.0, 0.0]).sample(50)
    assert (only == 2).all()
