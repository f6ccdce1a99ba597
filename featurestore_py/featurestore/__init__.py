"""featurestore: a dbt-centric, warehouse-native feature store.

Features are dbt models; `target/manifest.json` is the registry.

`FeatureStore` and `OnlineResponse` are imported on first use (PEP 562), so that importing a part
of the package — the feature server, say — does not load the rest (the warehouse engines, dbt,
the training side).
"""

from importlib import import_module

from .errors import (FeatureStoreError, InvalidRegistryError, ManifestError, NotFound, NotOnline, RegistryError,
                     RequestError)
from .registry import Entity, Feature, FeatureService, FeatureView, FeatureViewProjection, Field, Registry
from .validate import Problem, validate
from .version import __version__

_LAZY = {"FeatureStore": ".store", "OnlineResponse": ".online_response"}

__all__ = [
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "InvalidRegistryError",
    "ManifestError",
    "NotFound",
    "NotOnline",
    "OnlineResponse",
    "Problem",
    "Registry",
    "RegistryError",
    "RequestError",
    "__version__",
    "validate",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featurestore' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
