"""The one duration grammar of the project: a positive whole number and a unit (`30d`, `12h`).

The dbt macro `featurestore._parse_duration` accepts exactly the same strings.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse `30d`, `12h`, `15m`, `45s` or `2w`; raise ValueError with the accepted forms otherwise."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"'{text}' is not a duration; write a positive whole number and a unit "
            "s, m, h, d or w, e.g. '30d' or '12h'"
        )
    number, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(**{_UNITS[unit]: number})


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of a duration in the same grammar (`2d`, `36h`)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
