"""The feature server's response encoder (featurestore.server.app.response_json, orjson) against
the one it replaced (json.dumps, compact) and Feast's server (Starlette's JSONResponse: compact,
UTF-8): the same bytes for what responses hold, non-finite floats as null, and integers past
64 bits or lone surrogates (which orjson refuses) written as before, not a 500."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from featurestore.server.app import response_json


def old(value) -> bytes:  # the server's encoder before orjson
    return json.dumps(value, separators=(",", ":")).encode()


def feast(value) -> bytes:  # Starlette's JSONResponse.render, which Feast's feature server answers with
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


RESPONSE = {"metadata": {"feature_names": ["customer_id", "store_id", "total_orders_30d", "avg_order_value_30d",
                                           "customer_segment", "tags"]},
            "results": [{"values": ["c1", 42, 17, 0.1, "vip", [["a", 1], [2.5, None, True, False]]],
                         "statuses": ["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"],
                         "event_timestamps": ["2026-12-01T00:00:00.000000Z", "1970-01-01T00:00:00Z"]},
                        {"values": [1 / 3, -0.0, 1e16, 1e308, 5e-324, 123456789.125, 2**63 - 1, -(2**63), 0, -1],
                         "statuses": [], "event_timestamps": [None]}]}


def test_a_response_is_byte_for_byte_the_old_encoders_and_feasts():
    assert response_json(RESPONSE) == old(RESPONSE) == feast(RESPONSE)


def test_unicode_is_utf8_as_feasts_server_sends_it():
    value = {"values": ["é", "名前", "😀", "\u2028", 'a"b\\c\n\t\x00']}
    assert response_json(value) == feast(value)
    assert json.loads(response_json(value)) == value == json.loads(old(value))


def test_non_finite_floats_are_null_valid_json():
    value = {"values": [float("nan"), float("inf"), -float("inf"), [float("nan")]]}
    text = response_json(value)
    assert text == b'{"values":[null,null,null,[null]]}'
    json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))  # no NaN/Infinity literals


def test_integers_past_64_bits_and_lone_surrogates_are_written_as_before():
    for value in ({"values": [2**64, -(2**63) - 1, 10**30]}, {"values": [["deep", [2**100]]]}, {"error": "key \ud800"}):
        assert response_json(value) == old(value)
    assert json.loads(response_json({"values": [2**64]})) == {"values": [2**64]}


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_response_value_reads_back_equal_to_the_old_encoders(value):
    new = json.loads(response_json(value))
    assert new == json.loads(old(value)) == value
    assert repr(new) == repr(value)  # floats bit for bit (-0.0 included), ints not turned into floats
