"""An export's manifest is checked field by field before replay uses it (read_manifest)."""

from __future__ import annotations

import json

import pytest

from featurestore.errors import FeatureStoreError
from featurestore.retrieval.manifest import read_manifest

GOOD = {"references": ["v:f"], "outputs": ["f"], "full_feature_names": False, "timestamp_column": "at",
        "knowledge_guard": False, "views": {"v": {"known_at": "2026-01-01T00:00:00.000000", "build_id": "b1"}},
        "content_sha256": "0" * 64, "sql": "select 1"}


def with_(**changes):
    return json.dumps({**GOOD, **changes})


def test_a_good_manifest_is_read():
    assert read_manifest(json.dumps(GOOD), "x.parquet") == GOOD
    assert read_manifest(with_(views={"v": {"known_at": None, "build_id": None}}), "x")["views"]["v"]["known_at"] is None


@pytest.mark.parametrize("raw, message", [
    (b"\xff\xfe", "is not JSON"),
    ("[1, 2]", "is not a JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "outputs"}), "has no 'outputs'"),
    (with_(references="v:f"), "'references' must be a non-empty list of 'view:feature' strings"),
    (with_(references=[]), "'references' must be a non-empty list"),
    (with_(outputs=["f", 3]), "'outputs' must be a list of strings"),
    (with_(knowledge_guard="yes"), "'knowledge_guard' must be true or false, not \"yes\""),
    (with_(full_feature_names=1), "'full_feature_names' must be true or false"),
    (with_(timestamp_column=""), "'timestamp_column' must be a column name"),
    (with_(views=["v"]), "'views' must be an object"),
    (with_(content_sha256="abc"), "'content_sha256' must be 64 hexadecimal digits"),
    (with_(views={"v": {"known_at": "yesterday"}}), "views.v.known_at must be an ISO 8601 timestamp or null, not \"yesterday\""),
    (with_(views={"v": {"known_at": 5}}), "views.v.known_at must be an ISO 8601"),
    (with_(views={"v": {"known_at": None, "build_id": 7}}), "views.v.build_id must be a string or null"),
])
def test_a_damaged_manifest_is_refused_naming_the_field(raw, message):
    with pytest.raises(FeatureStoreError) as error:
        read_manifest(raw, "train.parquet")
    assert message in str(error.value) and "train.parquet" in str(error.value)
