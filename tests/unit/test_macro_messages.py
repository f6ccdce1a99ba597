"""Macros given the wrong thing stop with a message naming the model and what to write, not a
parser error from the SQL they would have rendered (macros rendered with plain jinja2)."""

from __future__ import annotations

import pytest

from macro_env import CompilerError, MacroNamespace


class Model:
    def __init__(self, columns):
        self.name, self.original_file_path, self.columns = "live_carts", "models/live_carts.sql", columns


class Column:
    def __init__(self, name, data_type):
        self.name, self.data_type = name, data_type


class Relation:
    """What ref() and source() give: something that renders as a relation."""

    def render(self):
        return '"main"."labels"'

    def __str__(self):
        return self.render()


def test_pushed_rows_in_a_model_without_columns_names_the_model_and_the_view():
    macros = MacroNamespace("push.sql", "snapshot.sql", execute=True, model=Model({}))
    with pytest.raises(CompilerError) as failure:
        macros.pushed_rows("live_carts")
    message = str(failure.value)
    assert "pushed_rows('live_carts')" in message and "model 'live_carts'" in message and "columns" in message


def test_pushed_rows_with_columns_reads_them_and_at_parse_time_needs_none():
    columns = {"customer_id": Column("customer_id", "varchar")}
    empty = MacroNamespace("push.sql", "snapshot.sql", execute=False, model=Model({}))
    assert empty._pushed_columns("live_carts") == []  # dbt parses before the YAML is applied
    declared = MacroNamespace("push.sql", "snapshot.sql", execute=True, model=Model(columns))
    assert [column.name for column in declared._pushed_columns("live_carts")] == ["customer_id"]


@pytest.mark.parametrize("entities, named", [("churn_labels", "the string 'churn_labels'"), (None, "None"),
                                             (42, "42")])
def test_training_set_with_entities_that_are_not_a_relation_says_what_to_write(entities, named):
    macros = MacroNamespace("training_set.sql", "snapshot.sql", execute=True, model=Model({}))
    with pytest.raises(CompilerError) as failure:
        macros.training_set(entities, "churn_model")
    message = str(failure.value)
    assert "model 'live_carts'" in message and named in message and "ref(" in message and "source(" in message


def test_training_set_with_a_relation_gets_past_the_check():
    macros = MacroNamespace("training_set.sql", "snapshot.sql", execute=False, model=Model({}))
    assert macros.training_set(Relation(), "churn_model") == "select 1 as _fs_parsed"
