"""Hand-built dbt manifests for unit tests: only the keys registry.py reads."""

from __future__ import annotations


def model(name, meta, columns):
    """A model node with featurestore meta and declared column types."""
    return {"resource_type": "model", "name": name, "unique_id": f"model.p.{name}", "config": {"meta": {"featurestore": meta}},
            "columns": {column: {"data_type": dtype, "description": column} for column, dtype in columns.items()},
            "original_file_path": f"models/{name}.sql", "relation_name": f"main.{name}"}


def exposure(name, depends_on, features=None):
    """An ml exposure (a feature service): explicit features, or every feature of depends_on."""
    meta = {"featurestore": {"features": features}} if features else {}
    return {"resource_type": "exposure", "name": name, "type": "ml", "unique_id": f"exposure.p.{name}",
            "owner": {"name": "ml"}, "description": name, "config": {"meta": meta}, "meta": meta,
            "depends_on": {"nodes": [f"model.p.{model}" for model in depends_on]},
            "original_file_path": "models/ml.yml"}


def manifest(nodes, exposures=()):
    return {"metadata": {"project_name": "p", "adapter_type": "duckdb"},
            "nodes": {node["unique_id"]: node for node in nodes},
            "exposures": {item["unique_id"]: item for item in exposures}}


# customers and stores: the entities both unit modules of the online read and of planning use
DIMS = model("dims", {"entities": [{"name": "customer", "join_keys": ["customer_id"]},
                                   {"name": "store", "join_keys": ["store_id"]}]},
             {"customer_id": "varchar", "store_id": "integer"})
