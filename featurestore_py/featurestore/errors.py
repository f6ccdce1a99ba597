"""Exceptions raised by the feature store. Each message says what is wrong, where, and what to do."""


class FeatureStoreError(Exception):
    """Base class for every error the feature store raises on purpose."""


class ManifestError(FeatureStoreError):
    """The dbt manifest is missing, unreadable or could not be produced by `dbt parse`."""


class RegistryError(FeatureStoreError):
    """A lookup in the registry failed: unknown view, feature, entity or service."""


class InvalidRegistryError(FeatureStoreError):
    """The YAML metadata breaks one or more rules; `problems` lists them."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"The feature registry has {len(self.problems)} error(s); fix the YAML and run "
            f"`featurestore validate`:\n{lines}"
        )


class NoDataError(FeatureStoreError):
    """Monitoring found nothing to measure: an empty view or window must not look healthy."""
