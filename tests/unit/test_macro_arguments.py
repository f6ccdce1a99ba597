"""The macros' documented arguments (macros/_macros.yml) are their Jinja signatures: the same
names in the same order, with types in dbt's grammar. dbt 1.12 warns on any difference
(`validate_macro_args`), so a user's `dbt build` would print our mistakes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dbt.parser.schemas import is_valid_type  # dbt's own grammar of argument types

REPO = Path(__file__).resolve().parents[2]
MACRO_FILES = [*sorted((REPO / "macros").rglob("*.sql")), REPO / "featurestore_py" / "featurestore" / "sql" / "point_in_time.sql"]
SIGNATURE = re.compile(r"{%-?\s*(macro|test|materialization)\s+(\w+)\s*(?:\((.*?)\))?[^%]*-?%}", re.S)


def _split_arguments(text: str) -> list[str]:
    """Top-level comma-separated parts of a macro's parameter list (defaults may hold commas)."""
    parts, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [part.split("=")[0].strip() for part in parts if part.strip()]


def signatures() -> dict[str, list[str]]:
    found = {}
    for path in MACRO_FILES:
        for kind, name, arguments in SIGNATURE.findall(path.read_text(encoding="utf-8")):
            # dbt names a `{% test x %}` macro test_x and a materialization materialization_x_<adapter>
            found[{"macro": name, "test": f"test_{name}"}.get(kind, f"materialization_{name}_default")] = \
                _split_arguments(arguments)
    return found


DOCUMENTED = yaml.safe_load((REPO / "macros" / "_macros.yml").read_text(encoding="utf-8"))["macros"]
WITH_ARGUMENTS = [entry for entry in DOCUMENTED if entry.get("arguments")]


def test_the_signature_reader_sees_defaults_with_commas():
    assert _split_arguments("source, partition_by, spine=none, closed='a,b', options=[1, 2]") == \
        ["source", "partition_by", "spine", "closed", "options"]


def test_every_documented_macro_exists():
    assert [entry["name"] for entry in DOCUMENTED if entry["name"] not in signatures()] == []
    assert len(WITH_ARGUMENTS) >= 20


@pytest.mark.parametrize("entry", WITH_ARGUMENTS, ids=lambda entry: entry["name"])
def test_documented_arguments_are_the_signature(entry):
    assert [argument["name"] for argument in entry["arguments"]] == signatures()[entry["name"]]


@pytest.mark.parametrize("entry", WITH_ARGUMENTS, ids=lambda entry: entry["name"])
def test_argument_types_are_in_dbts_grammar(entry):
    invalid = [(argument["name"], argument.get("type")) for argument in entry["arguments"]
               if argument.get("type") and not is_valid_type(argument["type"])]
    assert invalid == []


def test_an_invalid_type_is_caught():
    assert not is_valid_type("string | list") and not is_valid_type("list[dict]") and is_valid_type("optional[string]")
