"""dbt run as a command (FEATURESTORE_DBT=<dbt>) gives what dbt in-process gives: the same nodes
and statuses, the same manifest for the registry. CI also runs the integration tests about what dbt
itself does that way, on dbt-core 1.11 (`make test-compat`: the tests marked dbt_compat)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, copy_project, project_env

from featurestore import FeatureStore

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`


def dbt_command() -> str:
    return str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else shutil.which("dbt")


def test_build_as_a_command_equals_in_process(tmp_path):
    in_process = copy_project(FIXTURES / "mini_project", tmp_path / "in_process")
    as_command = copy_project(FIXTURES / "mini_project", tmp_path / "as_command")
    expected = project_env(in_process, FEATURESTORE_DBT="inprocess").run("build", "--quiet")
    dbt = project_env(as_command, FEATURESTORE_DBT=dbt_command())
    result = dbt.run("build", "--quiet")
    assert result.invocation == dbt_command()
    assert sorted((n.name, n.status) for n in result.results) == sorted((n.name, n.status) for n in expected.results)
    assert {n.name for n in result.results} >= {"users", "user_features"}

    store = FeatureStore(as_command, env={"FEATURESTORE_DBT": dbt_command(), **dbt.env})
    assert list(store.registry.feature_views) == ["user_features"]
    assert [feature.name for feature in store.registry.view("user_features").features] == ["clicks_7d", "tier"]


def test_a_failing_model_as_a_command_names_the_model(tmp_path):
    project = copy_project(FIXTURES / "mini_project", tmp_path / "broken")
    (project / "models" / "users.sql").write_text("select no_such_column from (select 1 as x)")
    result = project_env(project, FEATURESTORE_DBT=dbt_command()).run("build", "--quiet", raise_on_failure=False)
    assert not result.success
    failed = {n.name: n.message for n in result.failures()}
    assert "users" in failed and "no_such_column" in failed["users"]
    assert "users error" in result.describe_failure()
