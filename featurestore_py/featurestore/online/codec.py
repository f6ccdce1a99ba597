"""Feature values as DynamoDB attribute values, and back — with DynamoDB's documented rules
checked here, whatever a local emulator accepts.

Rules (DynamoDB developer guide, "Supported data types and naming rules"):
- a number has at most 38 significant digits; a non-zero magnitude is between 1e-130 and
  9.9999999999999999999999999999999999999e125 (positive or negative);
- a partition key value is at most 2,048 bytes; an item at most 400 KB (names plus values);
- NaN and infinities are not numbers DynamoDB can store.

A value that breaks a rule raises ValueRejected naming the reason; the writer sets the row
aside (view, key, feature, reason) instead of failing the whole view. NaN and infinities are
refused the same way — never silently turned into NULL, which would disagree with the warehouse.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from .. import types

MAX_KEY_BYTES = 2048
MAX_ITEM_BYTES = 400 * 1024
MAX_DIGITS = 38
MIN_EXPONENT, MAX_EXPONENT = -130, 125  # adjusted exponent (of the first significant digit)
_EXACT = Context(prec=400)


class ValueRejected(ValueError):
    """A value DynamoDB cannot store; the message says why."""


def format_timestamp(value: datetime) -> str:
    """Fixed-width ISO 8601 in UTC: naive values are UTC. Strings of this form sort as times."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """An item's `2026-12-01T00:00:00.000000Z` (as written) as an aware UTC datetime."""
    if len(text) == 27 and text[10] == "T" and text[19] == "." and text[26] == "Z":  # the written form: the fast parser
        return datetime.fromisoformat(text[:26]).replace(tzinfo=timezone.utc)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def number_text(value: int | float | Decimal) -> str:
    """The N string of a number, or ValueRejected when DynamoDB cannot hold it exactly."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueRejected(f"{value} is not a number DynamoDB can store")
        text = repr(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueRejected(f"{value} is not a number DynamoDB can store")
        text = str(value)
    else:
        text = str(value)
    try:
        number = _EXACT.create_decimal(text)
    except InvalidOperation:
        raise ValueRejected(f"{text!r} is not a number") from None
    if number.is_zero():
        return "0"
    digits = number.normalize(_EXACT).as_tuple().digits
    if len(digits) > MAX_DIGITS:
        raise ValueRejected(f"{text} has {len(digits)} significant digits; DynamoDB keeps at most {MAX_DIGITS}")
    exponent = number.adjusted()
    if exponent > MAX_EXPONENT:
        raise ValueRejected(f"{text} is larger in magnitude than DynamoDB's limit of 1e126")
    if exponent < MIN_EXPONENT:
        raise ValueRejected(f"{text} is smaller in magnitude than DynamoDB's limit of 1e-130")
    return text


def encode(value: Any) -> dict:
    """A Python value as a DynamoDB attribute value (ValueRejected when it cannot be stored)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": number_text(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, datetime):
        return {"S": format_timestamp(value)}
    if isinstance(value, date):
        return {"S": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(item) for item in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): encode(v) for k, v in value.items()}}
    raise ValueRejected(f"a value of type {type(value).__name__} cannot be stored in DynamoDB")


def decode(attribute: Mapping[str, Any], dtype: str | None = None) -> Any:
    """A DynamoDB attribute value as the Python value of the feature's declared type."""
    kind, value = next(iter(attribute.items()))
    family = types.declared_family(dtype)
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(value)
    if kind == "N":
        if types.is_whole_number(dtype):
            return int(Decimal(value))
        if family == types.FLOAT:
            return float(value)
        if family == types.DECIMAL:
            return Decimal(value)
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "S":
        if family == types.TIMESTAMP:
            return parse_timestamp(value) if value.endswith("Z") else datetime.fromisoformat(value)
        if family == types.DATE:
            return date.fromisoformat(value)
        return value
    if kind == "B":
        return bytes(value)
    if kind == "L":
        return [decode(item) for item in value]
    if kind == "M":
        return {k: decode(v) for k, v in value.items()}
    if kind in ("SS", "NS", "BS"):
        return set(value)
    raise ValueError(f"Unknown DynamoDB attribute type {kind}")


def _escape(value: Any) -> str:
    text = format_timestamp(value) if isinstance(value, datetime) else str(value)
    return text.replace("%", "%25").replace("|", "%7C").replace("=", "%3D")


def entity_key(join_keys: Sequence[str], row: Mapping[str, Any]) -> str:
    """`customer_id=1001|product_type=jaffle`, in the view's join-key order."""
    return "|".join(f"{name}={_escape(row[name])}" for name in join_keys)


def check_key(key: str) -> None:
    size = len(key.encode())
    if size > MAX_KEY_BYTES:
        raise ValueRejected(f"the entity key is {size:,} bytes; DynamoDB's partition-key limit is {MAX_KEY_BYTES:,}")


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (UTF-8), close enough to enforce 400 KB."""
    def size(value) -> int:
        kind, inner = next(iter(value.items()))
        if kind in ("S", "N"):
            return len(str(inner).encode())
        if kind == "B":
            return len(inner)
        if kind == "L":
            return 3 + sum(size(v) + 1 for v in inner)
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(v) + 1 for k, v in inner.items())
        return 1
    return sum(len(name.encode()) + size(value) for name, value in item.items())


BUILD = "_build"  # the snapshot build a synced item comes from (none: pushed)
WRITTEN_AT = "_written_at"  # epoch seconds of the write
LOAD = "_load"  # the bulk load under way when a writer wrote the item (generations.py, rule 1)


def stamp(items: list[dict], load: str | None) -> None:
    """The time of writing, and the load under way if any (generations.py, rule 1)."""
    now = {"N": str(int(time.time()))}
    for item in items:
        item[WRITTEN_AT] = now
        if load:
            item[LOAD] = {"S": load}
        else:
            item.pop(LOAD, None)
