"""Every macro of the package is documented in macros/_macros.yml, and every model in YAML."""

import json


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
