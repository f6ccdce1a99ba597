"""`FeatureStore`: the one door SDK users, the CLI and the server's settings go through. It
constructs (registry, dbt project, target, warehouse, online store) and delegates; the rules live
in the modules it calls (see docs/architecture.md)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from functools import cached_property
from typing import Any, Mapping, Sequence

from . import quality
from .dbt import DbtProject
from .entity_frame import entity_source
from .errors import FeatureStoreError, InvalidRegistryError
from .online import PROBE_SECONDS, OnlineStore
from .online.config import is_loopback_host, load_online_config
from .online.reader import RESPONSES_ENV, OnlineReader, response_style
from .online_response import OnlineResponse
from .profiles import load_target
from .registry import Entity, FeatureService, FeatureView, Registry, load_manifest, registry_from_manifest
from .requests import features_or_service, plan_features
from .retrieval import MAX_SPINE_ROWS, RetrievalJob, time_spine_source
from .retrieval.manifest import provenance
from .sync import Syncer, SyncResult, check_force
from .validate import Problem, built_types, errors, validate
from .warehouse import DEFAULT_QUERY_TIMEOUT, Warehouse, connect, dialect_of, identity_of

DEFAULT_LOCK_TIMEOUT = 60.0


class FeatureStore:
    """A dbt project seen as a feature store.

    >>> store = FeatureStore(".")              # reads target/manifest.json (dbt parse if stale)
    >>> store.registry.view("customer_features").features

    profiles_dir: where profiles.yml is (default: dbt's lookup — DBT_PROFILES_DIR, the project
    directory, the current directory, ~/.dbt/). lock_timeout: how long a reader waits for a
    writer's lock on the warehouse (DuckDB) before failing with the holder's name.
    query_timeout: seconds an entity query may run before it is stopped (default
    FEATURESTORE_QUERY_TIMEOUT, else 300; 0: no limit). On PostgreSQL, entity queries run as the
    role FEATURESTORE_PG_ENTITY_ROLE when it is set.
    """

    def __init__(self, project_dir: str | os.PathLike | None = None, target: str | None = None, *,
                 repo_path: str | os.PathLike | None = None, strict: bool = True,
                 env: Mapping[str, str] | None = None, profiles_dir: str | os.PathLike | None = None,
                 lock_timeout: float | None = None, query_timeout: float | None = None):
        if project_dir is not None and repo_path is not None:
            raise FeatureStoreError("Pass the dbt project's directory once: project_dir or repo_path (Feast's name).")
        self.project = DbtProject.at(project_dir if project_dir is not None else repo_path if repo_path is not None
                                     else ".", target, env, profiles_dir)
        self.strict = strict
        value = lock_timeout if lock_timeout is not None else self.project.getenv("FEATURESTORE_LOCK_TIMEOUT")
        try:
            self.lock_timeout = DEFAULT_LOCK_TIMEOUT if value in (None, "") else float(value)
            if not 0 <= self.lock_timeout <= 86400:
                raise ValueError
        except (TypeError, ValueError):
            raise FeatureStoreError(f"The lock timeout (FEATURESTORE_LOCK_TIMEOUT) must be a number of seconds "
                                    f"from 0 to 86400, not {value!r}.") from None
        value = query_timeout if query_timeout is not None else self.project.getenv("FEATURESTORE_QUERY_TIMEOUT")
        try:
            self.query_timeout = DEFAULT_QUERY_TIMEOUT if value in (None, "") else float(value)
            if not 0 <= self.query_timeout <= 7 * 86400:
                raise ValueError
        except (TypeError, ValueError):
            raise FeatureStoreError(f"The entity query time limit (FEATURESTORE_QUERY_TIMEOUT) must be a number of "
                                    f"seconds from 0 (no limit) to 604800, not {value!r}.") from None
        self.entity_role = self.project.getenv("FEATURESTORE_PG_ENTITY_ROLE") or None

    @cached_property
    def registry(self) -> Registry:
        """The registry, validated: an error in the YAML raises InvalidRegistryError (unless strict=False)."""
        registry = registry_from_manifest(load_manifest(self._manifest()))
        if self.strict:
            found = errors(validate(registry, self.project.project_dir))
            if found:
                raise InvalidRegistryError(found)
        return registry

    @property
    def repo_path(self) -> Path:
        """The dbt project's directory (Feast's name for the feature repository)."""
        return Path(self.project.project_dir)

    def refresh_registry(self) -> None:
        """Read the manifest again on next use (dbt parse first if it is stale)."""
        self.__dict__.pop("registry", None)
        self.__dict__.pop("online_reader", None)  # it plans over the registry

    # -- the registry, as Feast users read it ----------------------------------------------------
    # The registry's own objects, with Feast's attribute names (`.name`, `.entities`, `.ttl`,
    # `.features`/`.schema` with `.name` and `.dtype`, `.owner`, `.description`, `.tags`; a
    # service's `.feature_view_projections`). The registry is read once per FeatureStore
    # (refresh_registry() reads it again), so allow_cache and allow_registry_cache change nothing.
    def list_feature_views(self, allow_cache: bool = False, tags: Sequence[str] | None = None) -> list[FeatureView]:
        """Every feature view (online or not), or those carrying every tag in `tags`."""
        return [view for view in self.registry.feature_views.values() if _has_tags(view, tags)]

    def list_entities(self, allow_cache: bool = False) -> list[Entity]:
        return list(self.registry.entities.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.registry.services.values())

    def get_feature_view(self, name: str, allow_registry_cache: bool = False) -> FeatureView:
        return self.registry.view(name)

    def get_entity(self, name: str, allow_registry_cache: bool = False) -> Entity:
        return self.registry.entity(name)

    def get_feature_service(self, name: str, allow_cache: bool = False) -> FeatureService:
        """A feature service (a dbt exposure of type ml); pass it as `features=` to get_online_features
        or get_historical_features, as in Feast."""
        return self.registry.service(name)

    def validate(self) -> list[Problem]:
        """Every problem of the project's feature metadata, errors and warnings; and, for every
        view already built, each declared data_type its table's column does not have."""
        registry = registry_from_manifest(load_manifest(self._manifest()))
        return validate(registry, self.project.project_dir) + built_types(registry, self.connect)

    def _manifest(self):
        """The manifest, parsed for this store's target."""
        return self.project.ensure_manifest()

    def parse(self):
        """`dbt parse` now (a fresh manifest); the registry is read again on next use."""
        result = self.project.run("parse")
        self.refresh_registry()
        return result

    def build(self, *dbt_args: str):
        """`dbt build` with the project's profiles, then the built tables' column types checked
        against the YAML's data_types (an error names each mismatch); only the views this build made
        (`--select` leaves the others to their own build). Returns dbt's result."""
        result = self.project.run("build", *dbt_args)
        built = {node.name for node in result.results if node.status == "success"} if result.results else None
        mismatches = built_types(registry_from_manifest(load_manifest(self._manifest())), self.connect, built)
        if mismatches:
            raise FeatureStoreError("`dbt build` made columns of other types than the YAML declares:\n"
                                    + "\n".join(f"  - {problem}" for problem in mismatches))
        return result

    @cached_property
    def target(self) -> dict:
        """The rendered dbt target (type, path or host, schema ...)."""
        return load_target(self.project)

    @property
    def dialect(self) -> str:
        return dialect_of(self.target)

    def connect(self, read_only: bool = True, allow_file_access: bool = False) -> Warehouse:
        """A new connection to the target's warehouse; close it (or use `with`).

        Read-only by default, so readers never lock out each other (DuckDB); queries cannot read
        the host's files through the engine unless allow_file_access."""
        return connect(self.target, self.project.project_dir, read_only=read_only,
                       allow_file_access=allow_file_access, lock_timeout=self.lock_timeout,
                       query_timeout=self.query_timeout, entity_role=self.entity_role)

    # -- training sets -----------------------------------------------------------------------
    def get_historical_features(self, entity_df=None, features: Sequence[str] | FeatureService | None = None,
                                full_feature_names: bool = False, *, feature_service: str | None = None,
                                timestamp_column: str | None = None, knowledge_guard: bool = False,
                                start: datetime | None = None, end: datetime | None = None,
                                every: str = "1d", max_spine_rows: int | None = MAX_SPINE_ROWS,
                                strategy: str = "auto",
                                allow_file_access: bool = False,
                                filter_by_created_timestamp: bool = False, event_times: bool = False) -> RetrievalJob:
        """A point-in-time training set (lazy): `.to_df()`, `.to_arrow()`, `.to_parquet(path)`,
        `.to_table(name)`, `.sql`.

        entity_df: a DataFrame, Arrow table, .parquet/.csv path, SQL query or relation name with the
        join keys and a timestamp column (`timestamp_column`, else `event_timestamp`, else the only
        timestamp column). A SQL query must be one SELECT; it runs read-only and cannot read files
        through the engine unless allow_file_access. Without entity_df, pass start and end: every
        key of the views at every `every` between them, refused before it runs when that is more than
        max_spine_rows entity rows (0 or None: no limit). knowledge_guard=True (Feast 0.67:
        filter_by_created_timestamp=True) uses only rows created at or before each entity timestamp.
        features may be a feature service from get_feature_service, as in Feast. event_times: also
        each view's matched event time, as `<view>__event_timestamp`.
        """
        features, feature_service = features_or_service(features, feature_service)
        plan = plan_features(self.registry, features, feature_service, full_feature_names)
        requests = list(plan.views)
        if entity_df is None:
            if start is None or end is None:
                raise FeatureStoreError("Pass entity_df, or start and end for a time spine.")
            source = time_spine_source(requests, start, end, every, max_spine_rows)
        else:
            source = entity_source(entity_df)

        def open_warehouse(read_only: bool = True) -> Warehouse:
            return self.connect(read_only=read_only, allow_file_access=allow_file_access)

        return RetrievalJob(open_warehouse, self.dialect, requests, source, timestamp_column,
                            knowledge_guard=knowledge_guard or filter_by_created_timestamp, strategy=strategy,
                            feature_service=feature_service, provenance=self._provenance(), event_times=event_times,
                            on_demand=plan.on_demand)

    def _provenance(self) -> dict:
        return provenance(self.registry.project_name, self.project.project_dir, self.project.manifest_path,
                          self.target.get("target_name"))

    def replay(self, exported, out) -> dict:
        """Reproduce an exported training set from the warehouse as it was known when it was
        exported (featurestore.retrieval.replay); writes `out` only when the content is identical."""
        from .retrieval.replay import replay

        return replay(self.registry, self.connect, self.dialect, self._provenance(), exported, out)

    # -- online store ------------------------------------------------------------------------
    @cached_property
    def online_config(self):
        return load_online_config(self.project.project_dir, dict(self.project.env))

    @cached_property
    def online(self) -> OnlineStore:
        """The online store (DynamoDB; the local moto endpoint by default)."""
        return self._online_store()

    def _online_store(self, deadline_seconds: float | None = None) -> OnlineStore:
        from .online.dynamodb import DynamoDBOnlineStore

        return DynamoDBOnlineStore(self.online_config, deadline_seconds=deadline_seconds)

    def local_online_store(self):
        """The local DynamoDB endpoint of this project (`featurestore online up/down`)."""
        from .online.local import LocalDynamoDB

        return LocalDynamoDB(self.project.project_dir / ".featurestore", self.online_config.local_port)

    def online_up(self, port: int | None = None) -> str:
        """Start this project's local DynamoDB (moto's server) in the background, wait until it
        answers and return its endpoint. Only for a local endpoint (`auto` or a loopback URL)."""
        if not self.online_config.is_local:
            raise FeatureStoreError(f"The configured endpoint {self.online_config.endpoint_url or '(AWS)'} is not local.")
        local = self.local_online_store()
        if port:
            local.port = port
        return local.start()

    def online_down(self) -> bool:
        """Stop the local DynamoDB started by online_up (its data is lost); False if it was not running."""
        return self.local_online_store().stop()

    def syncer(self, online: OnlineStore | None = None) -> Syncer:
        return Syncer(self.registry, self.connect, online or self.online, identity_of(self.target, self.project.project_dir))

    def sync(self, views: Sequence[str] | None = None, full: bool = False, force: bool = False, *,
             build: bool = False, should_stop=None, progress=None, on_rows=None, on_batch=None,
             on_result=None) -> list[SyncResult]:
        """Push the current rows of online views (all of them by default) to the online store.
        full: every current row, not only those created since the watermark; force (with full):
        also rewrite items whose stored version equals the warehouse's (repairs items changed
        behind the store's back). build: `dbt build` the views (and what they depend on) first.
        should_stop, progress and on_result: see Syncer.sync; on_rows and on_batch: the same callbacks
        for every view."""
        check_force(full, force)
        syncer = self.syncer()
        selected = syncer.online_views(views)  # an unknown or offline view fails before any work
        if build:
            self.project.run("build", "--select", *[f"+{view.name}" for view in selected], "--quiet")
        if progress is None and (on_rows or on_batch):
            progress = lambda view: (on_rows, on_batch)  # noqa: E731
        return syncer.sync([view.name for view in selected], full=full, force=force, should_stop=should_stop,
                           progress=progress, on_result=on_result)

    def sync_status(self, views: Sequence[str] | None = None, deadline_seconds: float | None = None) -> list[dict]:
        """Per online view: watermark, pending rows, lag, the last sync's counts and rows set aside.
        deadline_seconds: give up on an online store that does not answer by then."""
        online = self._online_store(deadline_seconds) if deadline_seconds is not None else self.online
        return self.syncer(online).status(views)

    def materialize(self, start_date: datetime, end_date: datetime,
                    feature_views: Sequence[str] | None = None) -> list[SyncResult]:
        """Feast's `materialize`, mapped onto a full sync: every key's current row (as the
        warehouse knows it now) of the online views (all, or `feature_views`) is pushed. The window
        does not select rows: a key whose latest event falls outside [start_date, end_date] is
        pushed too (see the README, "Feast's API")."""
        if start_date > end_date:
            raise FeatureStoreError(f"materialize: start_date {start_date.isoformat()} is after end_date "
                                    f"{end_date.isoformat()}.")
        return self.sync(feature_views, full=True)

    def materialize_incremental(self, end_date: datetime, feature_views: Sequence[str] | None = None) -> list[SyncResult]:
        """Feast's `materialize_incremental`, mapped onto an incremental sync: the rows created since
        the last sync's watermark (the first sync of a view is full). end_date cuts nothing off: a
        row whose event lies after it is pushed too (see the README, "Feast's API")."""
        return self.sync(feature_views)

    @cached_property
    def response_style(self) -> str:
        """How online answers are shaped where ours and Feast's differ: `featurestore` (default) or
        `feast` (FEATURESTORE_RESPONSES; see featurestore.online.reader)."""
        return response_style(self.project.getenv(RESPONSES_ENV))

    @cached_property
    def online_reader(self) -> OnlineReader:
        return OnlineReader(self.registry, self.online, self.response_style)

    def get_online_features(self, features: Sequence[str] | FeatureService | None = None,
                            entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | None = None,
                            full_feature_names: bool = False, *, feature_service: str | None = None,
                            now: datetime | None = None, keys_from_text: bool = False,
                            refuse_unknown: bool = False) -> OnlineResponse:
        """The latest feature values for each entity row, from the online store, with a status per
        value (`.statuses`): NOT_FOUND for a missing key, OUTSIDE_MAX_AGE for a value older than
        the view's TTL at `now` (default: the current time; no value is given, even before
        DynamoDB's own TTL deletes it), NULL_VALUE for a stored NULL (PRESENT in the feast style).

        entity_rows: a list of {join key: value} (Feast's form) or {join key: [values]}; keys no
        requested view joins on are ignored, as in Feast, or refused (refuse_unknown: usually a
        misspelt key; the CLI and the server refuse them). features may be a feature service from
        get_feature_service. keys_from_text: the key values are text (a command line) and are
        converted to each join key's declared type.
        """
        features, feature_service = features_or_service(features, feature_service)
        return OnlineResponse(self.online_reader.read(features, entity_rows, feature_service=feature_service,
                                                      full_feature_names=full_feature_names, now=now,
                                                      keys_from_text=keys_from_text, refuse_unknown=refuse_unknown))

    def push(self, view: str, rows: Sequence[Mapping[str, Any]], to: str = "online_and_offline") -> dict:
        """Push rows to a feature view with `push: true`: written durably to the landing area (which
        the view's model reads with `featurestore.pushed_rows`, so the next `dbt build` holds them)
        and to the online store with the conditional write (an older row never replaces a newer
        one). Returns when both writes are done. to: online, offline or online_and_offline."""
        from .landing import landing_dir
        from .push import Pusher

        landing = landing_dir(self.project.project_dir, dict(self.project.env))
        return Pusher(self.registry, self.online, landing).push(view, list(rows), to)

    # -- quality -----------------------------------------------------------------------------
    def stats(self, views: Sequence[str] | None = None, *, feature_service: str | None = None,
              save: bool = True, allow_empty: bool = False) -> list[dict]:
        """Statistics of feature views (all, the named ones, or a service's), computed in the
        warehouse and appended to its `featurestore_stats_history` table unless save=False.
        A view with no rows raises NoDataError (a dead pipeline must not look healthy) unless
        allow_empty."""
        return quality.compute_stats(self.registry, self.connect, views, feature_service=feature_service, save=save,
                                     allow_empty=allow_empty)

    def drift(self, view: str, reference, current: tuple[datetime, datetime], allow_empty: bool = False):
        """Drift of every feature of a view between two windows of event times, or between the
        stats saved with a training set (a dict, see quality.load_saved_stats) and a window.
        A window with no values raises NoDataError unless allow_empty (then those features
        report no value)."""
        return quality.measure_drift(self.registry.view(view), self.connect, reference, current, allow_empty)

    def duplicate_features(self, sample: int = 2000, seed: int = 0) -> list:
        """Pairs of features on the same entity that look like one feature twice: identical or
        perfectly correlated values on a sample of keys and times, or near-identical names."""
        return quality.duplicate_features(self.registry, self.connect, self.get_historical_features, sample, seed)

    def audit(self, view_name: str, sample: int = 100, seed: int = 0, now: datetime | None = None) -> dict:
        """Training/serving consistency: for `sample` random keys, what the online store returns
        against what the point-in-time query returns at the same moment (default: now)."""
        return quality.audit_online(self.registry, self.connect, self.get_online_features, self.get_historical_features,
                             view_name, sample, seed, now)

    def audit_served(self, min_match_rate: float = 1.0) -> dict:
        """The feature server's served-vector log recomputed point-in-time at each request's time
        with the knowledge guard, per feature: match rate, mismatches, age of what was served
        (see featurestore.quality.audit). `failing` lists the features under min_match_rate."""
        from .landing import landing_dir

        return quality.audit_served(self.registry, self.get_historical_features,
                                    landing_dir(self.project.project_dir, dict(self.project.env)), min_match_rate)

    # -- the feature server and the catalog ----------------------------------------------------
    def serve_config(self, *, host: str = "127.0.0.1", port: int | None = None, insecure_no_auth: bool = False,
                     **options):
        """The feature server's settings for this project, checked before it starts: a registry
        without errors, its manifest (parsed now; the server runs no dbt), an online store to serve
        from, API keys unless it listens on loopback only (or insecure_no_auth), a free port. options:
        those of featurestore.server.ServeConfig (api_keys_file, max_entities, push, ...)."""
        from .online.local import describe_pid, port_holder
        from .server import ServeConfig, api_keys

        self.registry  # a registry with errors is refused before the server starts
        options.setdefault("responses", self.response_style)
        config = ServeConfig(project_dir=str(Path(self.project.project_dir).resolve()),
                             manifest=str(Path(self._manifest()).resolve()), **options)
        self.online_config.client_endpoint()  # `auto` without a running local DynamoDB: nothing to serve from
        if config.push:
            from .online.events import visibility_delay

            visibility_delay()  # a malformed FEATURESTORE_PUSH_VISIBILITY_DELAY stops the start, not a push
        if not is_loopback_host(host) and not api_keys(config) and not insecure_no_auth:
            raise FeatureStoreError(f"Serving on {host} needs API keys: set FEATURESTORE_API_KEYS or --api-keys-file "
                                    "(or pass --insecure-no-auth behind a gateway that authenticates).")
        holder = port_holder(port) if port else None
        if holder is not None:  # e.g. another checkout's server
            raise FeatureStoreError(f"Port {port} is in use by {describe_pid(holder)}; stop it or serve on another port "
                                    "(featurestore serve --port N).")
        return config

    def write_catalog(self, out_dir, dbt_docs_url: str | None = None, *, exports_dir=None,
                      reference_stats=None):
        """The static HTML catalog (index.html and a page per feature, view and service) with fresh
        statistics, their history, the views' sync state (when the online store answers within a
        few seconds), and the training sets found under exports_dir. reference_stats: a training
        set whose fingerprint drift is measured against (default: the first stats run)."""
        from .catalog import write_project_catalog

        return write_project_catalog(
            self.registry, out_dir, dbt_docs_url, stats=lambda: self.stats(save=False, allow_empty=True),
            connect=self.connect, exports_dir=exports_dir, reference_stats=reference_stats,
            sync_status=lambda: self.sync_status(deadline_seconds=min(self.online_config.timeout_seconds, PROBE_SECONDS)),
            compiled_dir=self.project.manifest_path.parent / "compiled" / self.registry.project_name)


def _has_tags(view: FeatureView, tags) -> bool:
    if not tags:
        return True
    if isinstance(tags, Mapping):
        raise FeatureStoreError("Tags here are names (the view's `tags: [...]`), not key/value pairs: pass tags=[...].")
    return set(tags) <= set(view.tags)
