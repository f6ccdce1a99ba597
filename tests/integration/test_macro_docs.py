"""Every macro of the package is documented in macros/_macros.yml, and every model in YAML."""

import json

import pytest

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`


def test_every_macro_and_model_is_documented(demo_project):
    manifest = json.loads((demo_project / "target" / "manifest.json").read_text())
    macros = [m for m in manifest["macros"].values() if m["package_name"] == "featurestore"]
    assert len(macros) >= 25
    assert [m["name"] for m in macros if not m["description"].strip()] == []
    public = {m["name"]: m for m in macros if not m["name"].startswith(("_", "default__", "duckdb__", "postgres__", "spark__", "test_", "materialization_"))}
    takes_arguments = {name for name, m in public.items() if f"macro {name}()" not in m["macro_sql"]}
    assert [name for name, m in public.items()
            if not m["arguments"] and name in takes_arguments and name != "current_rows"] == []
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert [n["name"] for n in models if not n["description"].strip()] == []


def test_a_project_using_the_package_parses_without_a_warning(tmp_path):
    """With dbt 1.12's argument checks on (the default there; a project flag on 1.11), every
    warning an error: our macros' YAML must match their Jinja, on whichever dbt is installed."""
    from conftest import FIXTURES, copy_project, project_env

    project = copy_project(FIXTURES / "mini_project", tmp_path / "client")
    config = project / "dbt_project.yml"
    config.write_text(config.read_text() + "flags:\n  validate_macro_args: true\n  send_anonymous_usage_stats: false\n")
    dbt = project_env(project)
    dbt.run("deps", "--quiet")
    result = dbt.run("parse", "--warn-error", "--no-partial-parse", raise_on_failure=False)
    assert result.success, f"dbt parse warned: {result.exception or 'see the output above'}"


def test_the_macros_models_call_have_a_reference_section(demo_project):
    """Every macro the demo's models call, and every portable type macro, has a section under the
    README's "The macros" and each of its arguments documented in macros/_macros.yml."""
    import re

    from conftest import EXAMPLE, REPO

    manifest = json.loads((demo_project / "target" / "manifest.json").read_text())
    macros = {m["name"]: m for m in manifest["macros"].values() if m["package_name"] == "featurestore"}
    called = {name for path in (EXAMPLE / "models").rglob("*.sql")
              for name in re.findall(r"featurestore\.([a-z_]+)\(", path.read_text())}
    portable = {name for name in macros if name.startswith("type_") or name == "column_type"}
    assert {"type_double", "column_type", "rolling_window"} <= called | portable
    section = (REPO / "README.md").read_text().split("\n## The macros\n")[1].split("\n## ")[0]
    headings = re.findall(r"^### (.*)$", section, re.MULTILINE)
    for name in sorted(called | portable):
        assert any(f"`{name}`" in heading for heading in headings), f"README: no section for {name}"
        signature = re.search(rf"macro {name}\(([^)]*)\)", macros[name]["macro_sql"]).group(1)
        parameters = {part.split("=")[0].strip() for part in signature.split(",") if part.strip()}
        assert {argument["name"] for argument in macros[name]["arguments"]} == parameters, name
