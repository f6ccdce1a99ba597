"""What a new user hits first: `serve` after the README's one install line, the default online
endpoint (`auto`: this project's own local DynamoDB), and a stats file of an earlier version."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from featurestore.cli import app
from featurestore.errors import FeatureStoreError
from featurestore.online.config import load_online_config
from featurestore.quality import load_saved_stats

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "featurestore_py" / "featurestore"
runner = CliRunner()


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _with_requirements(names: set[str]) -> set[str]:
    """The distributions `pip install` brings for these: them and what they require, transitively."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            todo += [_name(r) for r in requires(name) or [] if "extra ==" not in r]
        except PackageNotFoundError:
            pass
    return found


def test_the_plain_install_brings_everything_serve_imports():
    """`pip install <repository>` (the README's install line, no extras) must be enough for
    `featurestore serve`: every third-party module the server code imports comes with the core
    dependencies."""
    core = {_name(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    installed_by_core = _with_requirements(core)
    modules = {"uvicorn"}  # imported by `featurestore serve` itself (cli.py)
    for source in (PACKAGE / "server").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    third_party = {m for m in modules if m not in sys.stdlib_module_names and m != "featurestore"}
    distributions = packages_distributions()
    missing = {m: distributions.get(m) for m in third_party
               if not {_name(d) for d in distributions.get(m, [m])} & installed_by_core}
    assert not missing, f"serve imports modules the core dependencies do not install: {missing}"


@pytest.mark.parametrize("module", ["uvicorn", "fastapi", "prometheus_client"])
def test_serve_without_its_dependencies_says_what_to_install(module, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were not installed
    result = runner.invoke(app, ["serve", "-p", str(tmp_path)])
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert message.startswith("error: `featurestore serve` needs") and module in message
    assert "pip install fastapi uvicorn prometheus-client" in message and "bug" not in message
    assert len(message.splitlines()) == 1


def _project(tmp_path: Path, online: str = "") -> Path:
    (tmp_path / "dbt_project.yml").write_text(f"name: p\nprofile: p\n{online}")
    return tmp_path


def test_the_default_endpoint_is_the_projects_own_local_dynamodb(tmp_path):
    config = load_online_config(_project(tmp_path), env={})
    assert config.endpoint_url == "auto" and config.is_local and config.local_port is None  # online up takes a free port
    with pytest.raises(FeatureStoreError, match=r"local DynamoDB \(endpoint_url: auto\), which is not running: start "
                                                rf"it with `featurestore online up -p {re.escape(str(tmp_path))}`"):
        config.client_endpoint()


def test_an_explicit_endpoint_is_used_as_given(tmp_path):
    project = _project(tmp_path, "vars:\n  featurestore_online:\n    endpoint_url: http://127.0.0.1:9999\n")
    config = load_online_config(project, env={})
    assert config.client_endpoint() == "http://127.0.0.1:9999" and config.local_port == 9999
    from_env = load_online_config(project, env={"FEATURESTORE_DYNAMODB_ENDPOINT": "http://localhost:7000"})
    assert from_env.client_endpoint() == "http://localhost:7000"
    aws = load_online_config(project, env={"FEATURESTORE_DYNAMODB_ENDPOINT": ""})
    assert aws.client_endpoint() is None and not aws.is_local


def test_a_stats_file_of_0_1_says_the_stats_are_inside_the_export_now(tmp_path):
    export = tmp_path / "out" / "churn.parquet"
    export.parent.mkdir()
    pq.write_table(pa.table({"x": [1]}), export)
    result = runner.invoke(app, ["drift", "customer_features", "--reference-stats", f"{export}.stats.json",
                                 "--current", "2024-01-01:2024-02-01", "-p", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {export}.stats.json does not exist: a training set's stats now live inside the exported Parquet "
        f"file, not in a .stats.json beside it; pass --reference-stats {export}.")
    with pytest.raises(FeatureStoreError, match=r"pass the exported Parquet file itself \(.*gone.parquet is not there"):
        load_saved_stats(tmp_path / "gone.parquet.stats.json")


def test_file_and_line_references_are_printed_as_written():
    """rich reads `:100:` as an emoji code: an import report's `definitions.py:100:` became 💯."""
    from featurestore.cli import console, err_console

    for output in (console, err_console):
        with output.capture() as captured:
            output.print("feature_definitions.py:100: on-demand feature view x")
        assert "feature_definitions.py:100:" in captured.get()
