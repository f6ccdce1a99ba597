"""sql_string: any text as a SQL string literal, escaped per engine (the registry tables' values
from YAML: macros/registry.sql, macros/spark.sql)."""

from __future__ import annotations

import duckdb
import pytest

from macro_env import MacroNamespace

TEXTS = ["plain", "it's", "''", "a\nb", "{{ ref('x') }} {% if %}", "back\\slash \\n \\'", "Zürich ✓ 日本", "%s ? $1", ""]


@pytest.mark.parametrize("text", TEXTS)
def test_the_standard_literal_reads_back_as_the_text(text):
    literal = MacroNamespace("registry.sql").default__sql_string(text)
    with duckdb.connect() as con:
        assert con.execute(f"select {literal}").fetchone()[0] == text


def test_sparks_literal_escapes_backslashes_then_quotes():
    """Spark reads `\\` and `\\'` as escapes; a backslash escaped after the quote would double it."""
    spark = MacroNamespace("spark.sql")
    assert spark.spark__sql_string("it's") == "'it\\'s'"
    assert spark.spark__sql_string("a\\b\\'") == "'a\\\\b\\\\\\''"
    assert spark.spark__sql_string("a\nb") == "'a\nb'"
