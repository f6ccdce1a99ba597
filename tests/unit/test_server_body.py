"""The feature server's body rules (featurestore.server.body) without a server: the byte scan's
nesting depth equals the parsed value's on any JSON (strings full of brackets, quotes and
escapes included), a body within the rules parses to what was sent, and each refusal names
its problem. The HTTP statuses are tested on a real server in tests/integration/test_server.py."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from featurestore.errors import RequestError
from featurestore.server.body import MAX_DEPTH, nesting_depth, parse_body

tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab,:é\n\t'), max_size=8) | st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3), max_leaves=20)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_the_scanned_depth_is_the_parsed_depth(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(text) == depth(value)
    assert parse_body(text) == value


@settings(max_examples=100, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=2 * MAX_DEPTH))
def test_a_body_deeper_than_the_limit_is_refused_before_it_is_parsed(value, wrapping):
    text = b"[" * wrapping + json.dumps(value).encode() + b"]" * wrapping
    if depth(value) + wrapping > MAX_DEPTH:
        with pytest.raises(RequestError, match=f"more than {MAX_DEPTH} deep"):
            parse_body(text)
    else:
        assert depth(parse_body(text)) == depth(value) + wrapping


def test_nested_100000_deep_is_refused_quickly_and_clearly():
    with pytest.raises(RequestError, match="nests arrays and objects more than 32 deep") as refused:
        parse_body(b"[" * 100_000 + b"]" * 100_000)
    assert refused.value.status == 400
    assert nesting_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": "\\"[[["}') == 1


@pytest.mark.parametrize("body, message", [
    (b'{"entities": {"customer_id": ["c", "\\ud800"]}}', r"in entities.customer_id\[1\]: a lone surrogate \\ud800"),
    (b'{"df": {"\\udc00x": [1]}}', r"in a key of df: a lone surrogate \\udc00"),
    (b'["\\udbff"]', r"in the body\[0\]: a lone surrogate \\udbff"),
    (b'{"entities": {"customer_id": ["\xed\xa0\x80"]}}', "not valid UTF-8: byte 31 \\(0xed\\)"),  # an encoded surrogate
    (b'{"a": "\xff"}', "not valid UTF-8: byte 7"),
    (b"[" + b"7" * 5000 + b"]", "thousands of digits"),
    (b'{"entities": {"customer_id": [NaN]}}', "holds NaN, which is not JSON"),
    (b'{"df": {"x": [1, Infinity]}}', "holds Infinity"),
    (b'[-Infinity]', "holds -Infinity"),
    (b'{"entities": {"customer_id": ["a"]}, "entities": {"customer_id": ["b"]}}', "names the key 'entities' twice"),
    (b'{"df": {"x": [1], "y": [2], "x": [3]}}', "names the key 'x' twice"),
    (b"{features", "not JSON"),
    (b"", "not JSON"),
])
def test_invalid_bodies_are_refused_naming_the_problem(body, message):
    with pytest.raises(RequestError, match=message):
        parse_body(body)


def test_valid_unicode_passes_pairs_and_escaped_backslashes_included():
    assert parse_body(b'["\\ud83d\\ude00", "\\\\ud800", "\xc3\xa9"]') == ["\U0001F600", "\\ud800", "é"]
    assert parse_body('{"a": "é"}'.encode("utf-16")) == {"a": "é"}  # JSON's other encodings, as json.loads reads them
