"""A request's JSON body, read as the server accepts it: UTF-8, at most `max_depth` arrays and
objects within each other (checked on the bytes before the parser runs: a body nested 100,000
deep would otherwise exhaust the parser's recursion), and no string holding a lone UTF-16
surrogate (`"\\ud800"` parses in Python, but no file, no online store and no response can
encode it), no `NaN` or `Infinity` (Python's parser takes them; JSON has no such value), and no
object naming a key twice (a parser keeps the last silently: which value did the client mean?).
Each refusal is a RequestError (400) saying what is wrong and where."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import RequestError

MAX_DEPTH = 32  # a Feast request nests 3 deep, a push of list values 4: this is room, not a tight fit

# a JSON string, whatever it holds ("unrolled" so it never backtracks); brackets inside one do not nest
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")
# the escape of a UTF-16 surrogate (\ud800-\udfff): only then can the parsed value hold a lone one
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_body(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body, or a RequestError naming what is wrong with it."""
    encoding = json.detect_encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RequestError(f"The body is not valid {encoding.upper()}: byte {exc.start:,} "
                           f"(0x{raw[exc.start]:02x}) {exc.reason}; send JSON in UTF-8.") from None
    utf8 = raw if encoding == "utf-8" else text.encode("utf-8", "surrogatepass")
    _check_depth(utf8, max_depth)
    try:
        value = json.loads(text, parse_constant=_not_json, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise RequestError(f"The body is not JSON: {exc}") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise RequestError("The body holds a number of thousands of digits; no value needs that many.") from None
    if _SURROGATE_ESCAPE.search(utf8):
        _check_unicode(value)
    return value


def _not_json(name: str) -> Any:
    raise RequestError(f"The body holds {name}, which is not JSON (no number is {name}); send null for a "
                       "missing value.")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise RequestError(f"The body names the key {_short(twice)!r} twice in one object; send each key once.")
    return value


def nesting_depth(utf8: bytes, stop_above: int | None = None) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count),
    counted without parsing it; stops counting once past `stop_above`."""
    brackets = _STRING.sub(b"", utf8).translate(None, _NOT_A_BRACKET)
    depth = deepest = 0
    for byte in brackets:
        depth = depth + 1 if byte in _OPENING else depth - 1
        if depth > deepest:
            deepest = depth
            if stop_above is not None and deepest > stop_above:
                break
    return deepest


def _check_depth(utf8: bytes, max_depth: int) -> None:
    if nesting_depth(utf8, stop_above=max_depth) > max_depth:
        raise RequestError(f"The body nests arrays and objects more than {max_depth} deep; no request needs that "
                           "many (a request nests 3 deep: {\"entities\": {\"key\": [values]}}).")


def _check_unicode(value: Any, where: str = "the body") -> None:
    """Refuse the first string (a key or a value) holding a lone surrogate, naming where it is."""
    if isinstance(value, str):
        match = _SURROGATE.search(value)
        if match:
            raise RequestError(f"Invalid Unicode in {where}: a lone surrogate \\u{ord(match.group()):04x} (an escape "
                               "\\ud800-\\udfff not paired as UTF-16 is no character); send text as valid UTF-8.")
    elif isinstance(value, dict):
        inside = "" if where == "the body" else where
        for key, item in value.items():
            _check_unicode(key, f"a key of {where}")
            _check_unicode(item, f"{inside}.{_short(key)}" if inside else _short(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_unicode(item, f"{where}[{index}]")


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."
