"""PSI, TVD, windows and schedules: pure functions."""

from datetime import datetime, timedelta, timezone

import pytest

from featurestore.errors import FeatureStoreError
from featurestore.quality import parse_window, psi, tvd
from featurestore.sync import Schedule


def test_psi_is_zero_for_equal_distributions_and_grows_with_shift():
    same = {0: 50, 1: 50}
    assert psi(same, same, 2) == pytest.approx(0.0)
    assert psi(same, {0: 90, 1: 10}, 2) > psi(same, {0: 60, 1: 40}, 2) > 0
    assert psi({}, same, 2) is None and psi(same, {}, 2) is None  # no data is not "no drift"


def test_tvd_between_zero_and_one():
    assert tvd({"a": 1}, {"a": 5}) == 0.0
    assert tvd({"a": 1}, {"b": 1}) == 1.0
    assert tvd({"a": 1, "b": 1}, {"a": 1}) == pytest.approx(0.5)
    assert tvd({}, {"a": 1}) is None


def test_windows_parse_or_say_what_is_wrong():
    assert parse_window("2024-01-01:2024-02-01") == (datetime(2024, 1, 1), datetime(2024, 2, 1))
    assert parse_window("2024-01-01T06:00:00:2024-01-02") == (datetime(2024, 1, 1, 6), datetime(2024, 1, 2))
    with pytest.raises(FeatureStoreError, match="ends before it starts"):
        parse_window("2024-02-01:2024-01-01", "--current")
    with pytest.raises(FeatureStoreError, match="--reference 'yesterday' is not a window"):
        parse_window("yesterday", "--reference")


def test_schedules_from_durations_and_cron():
    start = datetime(2024, 1, 1, 0, 7, tzinfo=timezone.utc)
    assert Schedule("15m").next_after(start) == start + timedelta(minutes=15)
    assert Schedule("*/15 * * * *").next_after(start) == datetime(2024, 1, 1, 0, 15, tzinfo=timezone.utc)
    for bad in ("15x", "0d", "every tuesday", "* * *"):
        with pytest.raises(FeatureStoreError, match="neither a duration"):
            Schedule(bad)
