"""One duration grammar: the same table of cases through the Python parser and the dbt macro."""

from datetime import timedelta

import pytest

from featurestore.durations import format_duration, parse_duration
from macro_env import CompilerError, MacroNamespace

MACRO = MacroNamespace("durations.sql")

VALID = {
    "30d": timedelta(days=30), "12h": timedelta(hours=12), "15m": timedelta(minutes=15), "45s": timedelta(seconds=45),
    "2w": timedelta(weeks=2), " 7D ": timedelta(days=7), "1s": timedelta(seconds=1), "36500d": timedelta(days=36500),
}
INVALID = ["", "d", "30", "30 d", "-5d", "0d", "1.5h", "7 days", "15x", "1y", "99999999999d", "36501d", "٣d",
           "30dd", "d30", "+5d"]


@pytest.mark.parametrize("text", sorted(VALID))
def test_valid_durations_agree(text):
    assert parse_duration(text) == VALID[text]
    macro = MACRO._duration_microseconds(text, "test")
    assert macro == VALID[text] // timedelta(microseconds=1)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_durations_are_refused_by_both(text):
    with pytest.raises(ValueError):
        parse_duration(text)
    with pytest.raises(CompilerError):
        MACRO._parse_duration(text, "test")


@pytest.mark.parametrize("value", [7, 7.0, True, None, ["7d"]])
def test_non_strings_are_refused_by_both(value):
    with pytest.raises(ValueError):
        parse_duration(value)
    with pytest.raises(CompilerError):
        MACRO._parse_duration(value, "test")


def test_format_is_the_shortest_exact_spelling():
    assert [format_duration(parse_duration(t)) for t in ("14d", "36h", "90m", "61s")] == ["2w", "36h", "90m", "61s"]
