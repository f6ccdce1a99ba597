"""Exceptions raised by the feature store. Each message says what is wrong, where, and what to do."""


class FeatureStoreError(Exception):
    """Base class for every error the feature store raises on purpose."""


class ManifestError(FeatureStoreError):
    """The dbt manifest is missing, unreadable or could not be produced by `dbt parse`."""


class RequestError(FeatureStoreError):
    """What a caller asked for cannot be answered as asked (a bad entity row, a push of the wrong
    shape, a view that is not online): the caller's mistake, not the store's. `status` is the HTTP
    status the feature server answers with; the type, not the wording, decides it."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class RegistryError(RequestError):
    """A lookup in the registry failed, or a reference to it is malformed."""


class NotFound(RegistryError):
    """No feature view, feature, entity or service of that name (HTTP 404)."""

    status = 404


class NotOnline(RequestError):
    """A feature view that is not served online was asked for online."""


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
