"""`FeatureStore`: the façade SDK users and the CLI hold; it wires registry, dbt and warehouse."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from functools import cached_property
from typing import Any, Mapping, Sequence

from .dbt import DbtProject
from .entity_frame import entity_source
from .errors import FeatureStoreError, InvalidRegistryError, NoDataError
from .online import OnlineStore
from .online.config import load_online_config
from .online_response import OnlineResponse
from .profiles import load_target
from .online.reader import RESPONSES_ENV, response_style
from .registry import Entity, FeatureService, FeatureView, Registry, load_manifest, registry_from_manifest
from .sync import Syncer, SyncResult, online_table
from .training import RetrievalJob, plan_retrieval, time_spine_source
from .validate import Problem, built_types, errors, validate
from .warehouse import Warehouse, connect, dialect_of, identity_of

DEFAULT_LOCK_TIMEOUT = 60.0


class FeatureStore:
    """A dbt project seen as a feature store.

    >>> store = FeatureStore(".")              # reads target/manifest.json (dbt parse if stale)
    >>> store.registry.view("customer_features").features

    profiles_dir: where profiles.yml is (default: dbt's lookup — DBT_PROFILES_DIR, the project
    directory, the current directory, ~/.dbt/). lock_timeout: how long a reader waits for a
    writer's lock on the warehouse (DuckDB) before failing with the holder's name.
    """

    def __init__(self, project_dir: str | os.PathLike | None = None, target: str | None = None, *,
                 repo_path: str | os.PathLike | None = None, strict: bool = True,
                 env: Mapping[str, str] | None = None, profiles_dir: str | os.PathLike | None = None,
                 lock_timeout: float | None = None):
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
                       allow_file_access=allow_file_access, lock_timeout=self.lock_timeout)

    # -- training sets -----------------------------------------------------------------------
    def get_historical_features(self, entity_df=None, features: Sequence[str] | FeatureService | None = None,
                                full_feature_names: bool = False, *, feature_service: str | None = None,
                                timestamp_column: str | None = None, knowledge_guard: bool = False,
                                start: datetime | None = None, end: datetime | None = None,
                                every: str = "1d", strategy: str = "auto",
                                allow_file_access: bool = False,
                                filter_by_created_timestamp: bool = False) -> RetrievalJob:
        """A point-in-time training set (lazy): `.to_df()`, `.to_arrow()`, `.to_parquet(path)`,
        `.to_table(name)`, `.sql`.

        entity_df: a DataFrame, Arrow table, .parquet/.csv path, SQL query or relation name with the
        join keys and a timestamp column (`timestamp_column`, else `event_timestamp`, else the only
        timestamp column). A SQL query must be one SELECT; it runs read-only and cannot read files
        through the engine unless allow_file_access. Without entity_df, pass start and end: every
        key of the views at every `every` between them. knowledge_guard=True (Feast 0.67:
        filter_by_created_timestamp=True) uses only rows created at or before each entity timestamp.
        features may be a feature service from get_feature_service, as in Feast.
        """
        features, feature_service = _features_or_service(features, feature_service)
        knowledge_guard = knowledge_guard or filter_by_created_timestamp
        requests = plan_retrieval(self.registry, features, feature_service, full_feature_names)
        if entity_df is None:
            if start is None or end is None:
                raise FeatureStoreError("Pass entity_df, or start and end for a time spine.")
            source = time_spine_source(requests, start, end, every)
        else:
            source = entity_source(entity_df)

        def open_warehouse(read_only: bool = True) -> Warehouse:
            return self.connect(read_only=read_only, allow_file_access=allow_file_access)

        job = RetrievalJob(open_warehouse, self.dialect, requests, source, timestamp_column,
                           knowledge_guard=knowledge_guard, strategy=strategy)
        job.feature_service = feature_service
        job.provenance = self._provenance()
        return job

    def _provenance(self) -> dict:
        """What an export's manifest records of the project: its registry and its code."""
        import hashlib
        import subprocess

        from . import __version__

        manifest = self.project.manifest_path
        commit = None
        try:
            result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.project.project_dir, capture_output=True,
                                    text=True, timeout=5)
            commit = result.stdout.strip() if result.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            pass
        return {"project": self.registry.project_name, "featurestore_version": __version__,
                "dbt_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
                "git_commit": commit, "target": self.target.get("target_name")}

    def replay(self, exported, out) -> dict:
        """Reproduce an exported training set from the warehouse as it was known when it was exported:
        the entity rows are read from the export itself, and each view's versions are taken as known
        at that export's knowledge time (the latest created timestamp it held), superseded versions
        included. Writes `out` only when the content hash is identical; otherwise raises, saying why
        (e.g. a view was rebuilt since, so the versions known then are gone)."""
        import json

        import pyarrow.parquet as pq

        from .digest import content_hash
        from .training import MANIFEST_KEY

        source = Path(exported)
        try:
            table = pq.read_table(source)
        except (OSError, ValueError) as exc:
            raise FeatureStoreError(f"Cannot read the exported training set {source}: {str(exc).splitlines()[0]}") from None
        raw = (table.schema.metadata or {}).get(MANIFEST_KEY.encode())
        if raw is None:
            raise FeatureStoreError(f"{source} has no featurestore manifest; only exports of featurestore 0.2 or "
                                    "later can be replayed.")
        manifest = json.loads(raw)
        outputs = manifest["outputs"]
        entities = table.drop_columns([c for c in outputs if c in table.column_names]).replace_schema_metadata(None)
        known_at = {view: datetime.fromisoformat(state["known_at"]) for view, state in manifest["views"].items()
                    if state.get("known_at")}
        requests = plan_retrieval(self.registry, manifest["references"], None, manifest["full_feature_names"])
        job = RetrievalJob(self.connect, self.dialect, requests, entity_source(entities), manifest["timestamp_column"],
                           knowledge_guard=manifest["knowledge_guard"], known_at=known_at)
        job.provenance = self._provenance()
        result = job.to_arrow()
        digest = content_hash(result)
        if digest != manifest["content_sha256"]:
            rebuilt = [view for view, state in manifest["views"].items()
                       if state.get("build_id") != (job.snapshot_state.get(view) or {}).get("build_id")]
            why = (f"{', '.join(rebuilt)} {'was' if len(rebuilt) == 1 else 'were'} rebuilt since the export "
                   "(a full build keeps no superseded versions)" if rebuilt else
                   "versions known then are no longer in the warehouse")
            raise FeatureStoreError(
                f"Cannot reproduce {source}: the warehouse gives {result.num_rows:,} rows with different content "
                f"(content hash {digest[:12]} vs {manifest['content_sha256'][:12]} recorded): {why}.")
        job.to_parquet(out)
        return {"out": str(out), "rows": result.num_rows, "content_sha256": digest,
                "known_at": {view: moment.isoformat() for view, moment in known_at.items()},
                "manifest_changed": manifest.get("dbt_manifest_sha256") != job.provenance.get("dbt_manifest_sha256")}

    # -- online store ------------------------------------------------------------------------
    @cached_property
    def online_config(self):
        return load_online_config(self.project.project_dir, dict(self.project.env))

    @cached_property
    def online(self) -> OnlineStore:
        """The online store (DynamoDB; the local moto endpoint by default)."""
        from .online.dynamodb import DynamoDBOnlineStore

        return DynamoDBOnlineStore(self.online_config)

    def local_online_store(self):
        """The local DynamoDB endpoint of this project (`featurestore online up/down`)."""
        from .online.local import LocalDynamoDB

        return LocalDynamoDB(self.project.project_dir / ".featurestore", self.online_config.local_port)

    def syncer(self) -> Syncer:
        return Syncer(self.registry, self.connect, self.online, identity_of(self.target, self.project.project_dir))

    def sync(self, views: Sequence[str] | None = None, full: bool = False, force: bool = False,
             **callbacks) -> list[SyncResult]:
        """Push the current rows of online views (all of them by default) to the online store.
        full: every current row, not only those created since the watermark; force (with full):
        also rewrite items whose stored version equals the warehouse's (repairs items changed
        behind the store's back)."""
        if force and not full:
            raise FeatureStoreError("force rewrites every current row: pass it with full (--full --force).")
        syncer = self.syncer()
        return [syncer.sync_view(view, full=full, force=force, **callbacks) for view in syncer.online_views(views)]

    def sync_status(self, views: Sequence[str] | None = None) -> list[dict]:
        return self.syncer().status(views)

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

    def get_online_features(self, features: Sequence[str] | FeatureService | None = None,
                            entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | None = None,
                            full_feature_names: bool = False, *, feature_service: str | None = None,
                            now: datetime | None = None, keys_from_text: bool = False) -> OnlineResponse:
        """The latest feature values for each entity row, from the online store, with a status per
        value (`.statuses`): NOT_FOUND for a missing key, OUTSIDE_MAX_AGE for a value older than
        the view's TTL at `now` (default: the current time; no value is given, even before
        DynamoDB's own TTL deletes it), NULL_VALUE for a stored NULL (PRESENT in the feast style).

        entity_rows: a list of {join key: value} (Feast's form) or {join key: [values]}; keys no
        requested view joins on are ignored, as in Feast. features may be a feature service from
        get_feature_service. keys_from_text: the key values are text (a command line) and are
        converted to each join key's declared type.
        """
        from .online.reader import join_keys_of, key_from_text, read_online

        features, feature_service = _features_or_service(features, feature_service)
        requests = plan_retrieval(self.registry, features, feature_service, full_feature_names)
        offline = [request.view.name for request in requests if not request.view.online]
        if offline:
            raise FeatureStoreError(f"Feature view(s) {', '.join(offline)} are not online (`online: true` in their YAML).")
        entities = _entity_columns(entity_rows) or {key: [] for key in join_keys_of(requests)}  # no rows: an empty answer
        if keys_from_text:
            dtypes = {key: request.view.columns.get(key) for request in requests for key, _ in request.keys}
            entities = {key: [key_from_text(key, text, dtypes.get(key)) for text in values]
                        for key, values in entities.items()}
        tables = {request.view.name: online_table(self.registry, request.view) for request in requests}
        return OnlineResponse(read_online(self.online, tables, requests, entities, now=now, style=self.response_style))

    # -- quality -----------------------------------------------------------------------------
    def stats(self, views: Sequence[str] | None = None, *, feature_service: str | None = None,
              save: bool = True, allow_empty: bool = False) -> list[dict]:
        """Statistics of feature views (all, the named ones, or a service's), computed in the
        warehouse and appended to its `featurestore_stats_history` table unless save=False.
        A view with no rows raises NoDataError (a dead pipeline must not look healthy) unless
        allow_empty."""
        from . import quality

        if feature_service:
            views = list(dict.fromkeys(ref.partition(":")[0] for ref in self.registry.service(feature_service).feature_refs))
        selected = [self.registry.view(name) for name in views] if views else list(self.registry.feature_views.values())
        with self.connect() as warehouse:
            results = [quality.view_stats(warehouse, view) for view in selected]
        empty = [entry["view"] for entry in results if not entry["rows"]]
        if save:
            with self.connect(read_only=False) as warehouse:
                quality.save_history(warehouse, results)
        if empty and not allow_empty:
            raise NoDataError(f"No data: feature view(s) {', '.join(empty)} have no rows in the warehouse; "
                              "check their dbt models and sources (pass allow_empty / --allow-empty to accept it).")
        return results

    def drift(self, view: str, reference, current: tuple[datetime, datetime], allow_empty: bool = False):
        """Drift of every feature of a view between two windows of event times, or between the
        stats saved with a training set (a dict, see quality.load_saved_stats) and a window.
        A window with no values raises NoDataError unless allow_empty (then those features
        report no value)."""
        from . import quality

        feature_view = self.registry.view(view)
        with self.connect() as warehouse:
            if isinstance(reference, dict):
                results = quality.drift_against_saved(warehouse, feature_view, reference, current)
            else:
                results = quality.view_drift(warehouse, feature_view, reference, current)
        empty = [result.feature for result in results if result.no_data]
        if empty and not allow_empty:
            raise NoDataError(
                f"No data to compare for {view}: {', '.join(empty)} (reference rows / current rows: "
                + ", ".join(f"{r.reference_rows}/{r.current_rows}" for r in results if r.no_data)
                + "); check the windows and the pipeline (pass allow_empty / --allow-empty to accept it).")
        return results

    def duplicate_features(self, sample: int = 2000, seed: int = 0) -> list:
        """Pairs of features on the same entity that look like one feature twice: identical or
        perfectly correlated values on a sample of keys and times, or near-identical names."""
        import random as _random

        import pyarrow as pa

        from . import quality

        pairs = []
        by_keys: dict[tuple, list] = {}
        for view in self.registry.feature_views.values():
            by_keys.setdefault(self.registry.join_keys(view), []).append(view)
        for keys, views in by_keys.items():
            references = [feature.reference for view in views for feature in view.features]
            pairs += quality.duplicate_names(references)
            # the sample: random winning rows' keys and times of the first view, all views joined there
            first = views[0]
            with self.connect() as warehouse:
                rows = warehouse.fetch_all(warehouse.render("view_probe", probe="winning_points", keys=keys,
                                                            event=first.event_timestamp, relation=first.relation_name))
            rows = _random.Random(seed).sample(rows, min(sample, len(rows)))
            if not rows:
                continue
            frame = pa.table({**{key: [row[i] for row in rows] for i, key in enumerate(keys)},
                              "event_timestamp": [row[len(keys)] for row in rows]})
            table = self.get_historical_features(frame, references, full_feature_names=True).to_arrow()
            columns = [reference.replace(":", "__") for reference in references]
            pairs += quality.duplicate_values(table, references, columns)
        return pairs

    def audit(self, view_name: str, sample: int = 100, seed: int = 0, now: datetime | None = None) -> dict:
        """Training/serving consistency: for `sample` random keys, what the online store returns
        against what the point-in-time query returns at the same moment (default: now)."""
        import random as _random
        from datetime import timezone

        import pyarrow as pa

        from . import quality

        if sample < 1:
            raise FeatureStoreError(f"--sample must be at least 1, not {sample}.")
        view = self.registry.view(view_name)
        keys = self.registry.join_keys(view)
        moment = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
        with self.connect() as warehouse:
            rows = warehouse.fetch_all(warehouse.render("view_probe", probe="current_keys", keys=keys,
                                                        relation=view.relation_name))
        rows = _random.Random(seed).sample(rows, min(sample, len(rows)))
        entity_rows = [dict(zip(keys, row)) for row in rows]
        references = [feature.reference for feature in view.features]
        online = self.get_online_features(references, entity_rows=entity_rows, now=moment).to_dict()
        frame = pa.table({**{key: [row[key] for row in entity_rows] for key in keys},
                          "event_timestamp": [moment] * len(entity_rows)})
        offline = self.get_historical_features(frame, references).to_arrow().to_pydict()
        mismatches = quality.serving_mismatches([f.name for f in view.features], entity_rows, online, offline)
        return {"view": view_name, "at": moment.isoformat(), "keys": len(entity_rows),
                "features": len(view.features), "mismatches": mismatches}

    def push(self, view: str, rows: Sequence[Mapping[str, Any]], to: str = "online_and_offline") -> dict:
        """Push rows to a feature view with `push: true`: written durably to the landing area (which
        the view's model reads with `featurestore.pushed_rows`, so the next `dbt build` holds them)
        and to the online store with the conditional write (an older row never replaces a newer
        one). Returns when both writes are done. to: online, offline or online_and_offline."""
        from .server.push import Pusher, landing_dir

        landing = landing_dir(self.project.project_dir, dict(self.project.env))
        return Pusher(self.registry, self.online, landing).push(view, list(rows), to)

    def audit_served(self, min_match_rate: float = 1.0) -> dict:
        """The feature server's served-vector log recomputed point-in-time at each request's time
        with the knowledge guard, per feature: match rate, mismatches, age of what was served
        (see featurestore.served). `failing` lists the features under min_match_rate."""
        from .served import audit_served

        return audit_served(self, min_match_rate)

    def serve_config(self, **options):
        """The feature server's settings for this project: its manifest (parsed now; the server
        runs no dbt) and the options of `featurestore serve` (see featurestore.server.ServeConfig)."""
        from .server import ServeConfig

        self.registry  # a registry with errors is refused before the server starts
        options.setdefault("responses", self.response_style)
        return ServeConfig(project_dir=str(Path(self.project.project_dir).resolve()),
                           manifest=str(Path(self._manifest()).resolve()), **options)

    def write_catalog(self, out_dir, dbt_docs_url: str | None = None, *, exports_dir=None,
                      reference_stats=None):
        """The static HTML catalog (index.html and a page per feature, view and service) with fresh
        statistics, their history, the views' sync state (when the online store answers within a
        few seconds), and the training sets found under exports_dir. reference_stats: a training
        set whose fingerprint drift is measured against (default: the first stats run)."""
        from . import quality
        from .catalog import check_docs_url, write_catalog

        check_docs_url(dbt_docs_url)
        reference = quality.load_saved_stats(reference_stats) if reference_stats else None
        latest = self.stats(save=False, allow_empty=True)
        with self.connect() as warehouse:
            history = quality.load_history(warehouse)
        sync_states = None
        if any(view.online for view in self.registry.feature_views.values()):
            self.online.deadline_seconds = min(self.online.deadline_seconds, 5.0)
            try:
                sync_states = {row["view"]: row for row in self.sync_status()}
            except FeatureStoreError:
                sync_states = None  # the online store did not answer: shown as unknown
        return write_catalog(self.registry, latest, out_dir, dbt_docs_url, history=history, sync_states=sync_states,
                             exports=_find_exports(exports_dir) if exports_dir else [], reference=reference,
                             reference_label=Path(reference_stats).name if reference_stats else None,
                             sql_of=self._model_sql, exports_searched=bool(exports_dir))

    def _model_sql(self, view_name: str) -> tuple[str, str]:
        """The view's SQL as dbt compiled it (target/compiled), else as written; and a note saying which."""
        view = self.registry.view(view_name)
        compiled = self.project.manifest_path.parent / "compiled" / self.registry.project_name / view.sql_path
        if compiled.is_file():
            return compiled.read_text(encoding="utf-8"), f"compiled by dbt ({compiled.name})"
        if view.compiled_code:
            return view.compiled_code, "compiled by dbt"
        return view.raw_code, "as written (run dbt compile or build for the compiled SQL)"


def _features_or_service(features, feature_service: str | None) -> tuple[Sequence[str] | None, str | None]:
    """Feast passes a feature service as `features=`; ours also takes its name as `feature_service=`."""
    if isinstance(features, FeatureService):
        if feature_service is not None:
            raise FeatureStoreError("Pass either features=[...] or feature_service=..., not both and not neither.")
        return None, features.name
    if isinstance(features, str):
        raise FeatureStoreError(f"features must be a list of 'view:feature' references, not the string {features!r}.")
    return features, feature_service


def _entity_columns(entity_rows) -> dict[str, list]:
    """Entity rows as columns: from a list of {key: value} (every row with the same keys) or from
    {key: [values]} (every column as long)."""
    if entity_rows is None:
        raise FeatureStoreError("Pass entity_rows: a list of {join key: value}, one per entity row.")
    if isinstance(entity_rows, Mapping):
        for key, values in entity_rows.items():
            if isinstance(values, (str, bytes)) or not (isinstance(values, Sequence) or hasattr(values, "tolist")):
                raise FeatureStoreError(f"Entity column '{key}' must be a list of values, one per entity row; got "
                                        f"{type(values).__name__} {values!r} (entity rows as a list: [{{'{key}': ...}}]).")
        columns = {key: [_plain_key(value) for value in values] for key, values in entity_rows.items()}
        if len({len(values) for values in columns.values()}) > 1:
            raise FeatureStoreError("Every entity column must have the same number of values; got "
                                    + ", ".join(f"{key}: {len(values)}" for key, values in columns.items()) + ".")
        return columns
    rows = list(entity_rows)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise FeatureStoreError(f"Entity row {index} is a {type(row).__name__}, not a mapping of join keys to "
                                    "values (entity_rows=[{'customer_id': 1}, ...]).")
    keys = list(dict.fromkeys(key for row in rows for key in row))
    for index, row in enumerate(rows):
        missing = [key for key in keys if key not in row]
        if missing:
            raise FeatureStoreError(f"Entity row {index} has no {', '.join(map(repr, missing))}; every entity row "
                                    "needs the same keys.")
    return {key: [_plain_key(row[key]) for row in rows] for key in keys}


def _plain_key(value):
    """NumPy's integers (keys taken from a pandas Series) as Python's; other values as given."""
    import numbers

    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)) else value


def _has_tags(view: FeatureView, tags) -> bool:
    if not tags:
        return True
    if isinstance(tags, Mapping):
        raise FeatureStoreError("Tags here are names (the view's `tags: [...]`), not key/value pairs: pass tags=[...].")
    return set(tags) <= set(view.tags)


def _find_exports(folder) -> list[dict]:
    """Training sets exported by featurestore under a folder: their fingerprints' service and features."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .quality import STATS_METADATA_KEY

    root = Path(folder)
    if not root.is_dir():
        raise FeatureStoreError(f"--exports {root} is not a folder.")
    found = []
    for path in sorted(root.rglob("*.parquet")):
        try:
            metadata = pq.read_schema(path).metadata or {}
            stats = json.loads(metadata[STATS_METADATA_KEY.encode()]) if STATS_METADATA_KEY.encode() in metadata else None
        except (OSError, ValueError, pa.ArrowInvalid):
            continue
        if stats:
            found.append({"path": str(path.relative_to(root)), "service": stats.get("service"),
                          "features": list(stats.get("features") or {}), "rows": stats.get("rows"),
                          "exported_at": stats.get("exported_at")})
    return found
