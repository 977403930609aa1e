"""Missed targets are printed with their values and the targets beside them."""

from vqblur.measure.targets import check, missed


def test_missed_lists_value_and_target():
    t = {"sc_db[real]": check("sc_db", -10.5, "real"), "lsd_db[real]": check("lsd_db", 1.2, "real"),
         "level_change_db[real]": check("level_change_db", -2.0, "real"),
         "sine_440_db": check("sine_440_db", None)}
    assert t["lsd_db[real]"]["ok"] is True and t["sine_440_db"]["ok"] is None
    m = missed(t)
    assert m == ["sc_db[real] -10.5 (target <= -20)", "level_change_db[real] -2 (target |x| <= 0.3)"]


def test_level_target_is_two_sided():
    assert check("level_change_db", 0.2)["ok"] and not check("level_change_db", -0.4)["ok"]
    assert not check("level_change_db", 0.4)["ok"]
