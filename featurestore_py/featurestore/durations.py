"""The one duration grammar of the project: a positive whole number and a unit (`30d`, `12h`),
at most 100 years, case-insensitive, surrounding spaces ignored.

The dbt macro `featurestore._parse_duration` accepts exactly the same strings; a table of
cases in tests/unit/test_durations.py is checked against both.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*([0-9]+)([smhdw])\s*$", re.IGNORECASE)
MAX_SECONDS = 100 * 365 * 86400  # 100 years: anything longer is a typo, and overflows downstream


def parse_duration(text: str) -> timedelta:
    """Parse `30d`, `12h`, `15m`, `45s` or `2w`; raise ValueError with the accepted forms otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"'{text}' is not a duration; write a positive whole number and a unit "
            "s, m, h, d or w, e.g. '30d' or '12h'"
        )
    number, unit = int(match.group(1)), match.group(2).lower()
    if number * _SECONDS[unit] > MAX_SECONDS:
        raise ValueError(f"'{text}' is longer than 100 years; write a shorter duration")
    return timedelta(**{_UNITS[unit]: number})


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of a duration in the same grammar (`2d`, `36h`)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
