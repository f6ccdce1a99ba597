"""featurestore: a dbt-centric, warehouse-native feature store.

Features are dbt models; `target/manifest.json` is the registry.
"""

from .errors import (FeatureStoreError, InvalidRegistryError, ManifestError, NotFound, NotOnline, RegistryError,
                     RequestError)
from .online_response import OnlineResponse
from .registry import Entity, Feature, FeatureService, FeatureView, FeatureViewProjection, Field, Registry
from .store import FeatureStore
from .validate import Problem, validate

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
    "validate",
]
from .version import __version__  # noqa: E402  (after __all__: the public API first)
