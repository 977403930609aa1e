"""Codec v2's blur on two codemaps (engine/blur/codeblur.py): what each ``scale`` setting touches,
the finer micro levels dropped where a cell is resampled, v1 behaviour kept, no allocation."""

import tracemalloc

import numpy as np
import pytest

from vqblur.engine.blur import OFFSETS_8, NBTable, ZoneSampler
from vqblur.engine.blur.codeblur import CodeBlur, drop_finer_levels

K, R, L, RM, FAC = 64, 20, 4, 5, 4
N_MICRO = L * R


def _table(rows: int, seed: int) -> NBTable:
    rng = np.random.default_rng(seed)
    return NBTable(
        log_prior=np.full(K, -np.log(K), np.float32),
        log_row=np.full((rows, K), -np.log(rows), np.float32),
        log_neigh=np.log(rng.dirichlet(np.ones(K), size=(8, K))).transpose(0, 2, 1).astype(np.float32),
        offsets=np.array(OFFSETS_8),
    )


def _blur(seed: int = 0) -> CodeBlur:
    return CodeBlur(_table(R, 1), R, L, codebook_size=K, macro_table=_table(RM, 2), rows_macro=RM,
                    macro_factor=FAC, seed=seed)


def _columns(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, K, (n, N_MICRO + RM))


def test_zone_zero_changes_nothing():
    b, out = _blur(), np.empty(N_MICRO + RM, np.int64)
    for col in _columns(30):
        for scale in (0.0, 1.0):
            assert np.array_equal(b.step(col, out, 0.0, 0.5, 0.8, scale), col)


def test_micro_scale_resamples_level0_and_drops_finer_levels_there():
    b, out = _blur(), np.empty(N_MICRO + RM, np.int64)
    touched = np.zeros(R, bool)
    for col in _columns(60):
        b.step(col, out, 0.3, 0.5, 0.9, 0.0)
        rows = b.resampled
        touched |= rows
        fine = out[R:N_MICRO].reshape(L - 1, R)
        assert (fine[:, rows] == K).all()  # dropped where resampled
        assert np.array_equal(fine[:, ~rows], col[R:N_MICRO].reshape(L - 1, R)[:, ~rows])
        assert np.array_equal(out[:R][~rows], col[:R][~rows])  # level 0 outside: untouched
        assert np.array_equal(out[N_MICRO:], col[N_MICRO:])  # macro map untouched
    # zone 0.3 at centre 0.5: half-height 6 rows around row 9.5 -> rows 4..15 at most
    assert touched.any() and not touched[:4].any() and not touched[16:].any()


def test_macro_scale_resamples_macro_and_drops_finer_levels_under_it():
    b, out = _blur(), np.empty(N_MICRO + RM, np.int64)
    changed_macro = False
    for col in _columns(60, seed=1):
        b.step(col, out, 0.3, 0.5, 0.9, 1.0)
        macro_rows = b.macro.resampled
        rows = b.resampled
        assert np.array_equal(rows, np.repeat(macro_rows, FAC))  # the micro rows under them
        assert np.array_equal(out[:R], col[:R])  # micro level 0 stays
        fine = out[R:N_MICRO].reshape(L - 1, R)
        assert (fine[:, rows] == K).all()
        assert np.array_equal(out[N_MICRO:][~macro_rows], col[N_MICRO:][~macro_rows])
        changed_macro |= not np.array_equal(out[N_MICRO:], col[N_MICRO:])
    assert changed_macro


def test_one_level_bundle_is_the_v1_sampler_bit_for_bit():
    table = _table(R, 3)
    v1 = ZoneSampler(table, R, seed=11)
    b = CodeBlur(table, R, 1, codebook_size=K, seed=11)
    out_v1, out = np.empty(R, np.int64), np.empty(R, np.int64)
    for i, col in enumerate(_columns(80, seed=4)[:, :R]):
        z = 0.0 if i % 17 < 3 else 0.4
        v1.step(col, z, 0.3, 0.7, out=out_v1)
        b.step(col, out, z, 0.3, 0.7, scale=1.0)  # no macro map: scale has nothing to switch
        assert np.array_equal(out, out_v1)


def test_both_histories_follow_the_stream_when_scale_moves():
    """Switching scale mid-stream: the newly active sampler already saw the past columns."""
    a, b = _blur(5), _blur(5)
    oa, ob = np.empty(N_MICRO + RM, np.int64), np.empty(N_MICRO + RM, np.int64)
    cols = _columns(40, seed=6)
    for col in cols[:20]:
        a.step(col, oa, 0.3, 0.5, 0.0, 0.0)  # micro active
        b.step(col, ob, 0.3, 0.5, 0.0, 0.0)
    b.macro.reset()  # b's macro sampler forgets what it saw
    a.step(cols[20], oa, 0.3, 0.5, 0.0, 1.0)
    b.step(cols[20], ob, 0.3, 0.5, 0.0, 1.0)
    # at T = 0 the draw is the most probable code given the neighbours: history matters
    assert not np.array_equal(oa[N_MICRO:], ob[N_MICRO:])


@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_step_allocates_no_buffers(scale):
    b, out = _blur(), np.empty(N_MICRO + RM, np.int64)
    cols = _columns(40, seed=7)
    for col in cols[:5]:
        b.step(col, out, 0.6, 0.4, 0.7, scale)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for col in cols:
            b.step(col, out, 0.6, 0.4, 0.7, scale)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 4096, peak


def test_offline_drop_finer_levels():
    grid = np.random.default_rng(8).integers(0, K, (N_MICRO + RM, 12))
    sel = np.zeros((R, 12), bool)
    sel[3:7, 2:5] = True
    out = drop_finer_levels(grid.copy(), sel, L, R, K)
    fine = out[R:N_MICRO].reshape(L - 1, R, 12)
    assert (fine[:, sel] == K).all()
    assert np.array_equal(np.delete(out, np.s_[R:N_MICRO], 0), np.delete(grid, np.s_[R:N_MICRO], 0))
    assert np.array_equal(fine[:, ~sel], grid[R:N_MICRO].reshape(L - 1, R, 12)[:, ~sel])


def test_view_rows_show_what_the_zone_resamples():
    b, out = _blur(), np.empty(N_MICRO + RM, np.int64)
    before, after = np.empty(R, np.int64), np.empty(R, np.int64)
    col = _columns(1, seed=9)[0]
    b.step(col, out, 0.4, 0.5, 0.9, 0.0)
    b.view_rows(col, out, before, after)
    assert np.array_equal(before, col[:R]) and np.array_equal(after, out[:R])
    b.step(col, out, 0.4, 0.5, 0.9, 1.0)
    b.view_rows(col, out, before, after)
    assert np.array_equal(before, np.repeat(col[N_MICRO:], FAC))  # macro codes over their rows
    assert np.array_equal(after, np.repeat(out[N_MICRO:], FAC))


def test_buffers_may_change_between_steps():
    """CodeBlur keeps slices of the buffers it was last given; other buffers (or a mix of old
    and new ones) give the same columns as a blur that always saw one pair."""
    cols = _columns(40, seed=3)
    ref, a = _blur(seed=4), _blur(seed=4)
    out_ref = np.empty(N_MICRO + RM, np.int64)
    bufs = [np.empty(N_MICRO + RM, np.int64) for _ in range(3)]
    for i, col in enumerate(cols):
        want = ref.step(col.copy(), out_ref, 0.4, 0.5, 0.7, float(i % 7 == 0)).copy()
        clean = col.copy() if i % 3 else col  # sometimes the same object again, sometimes not
        got = a.step(clean, bufs[i % 3], 0.4, 0.5, 0.7, float(i % 7 == 0))
        assert got is bufs[i % 3]
        assert np.array_equal(got, want), i
