"""The `featurestore` command: thin, each command opens a FeatureStore and calls one method.

Errors have one boundary (`_Boundary.invoke`): an expected failure (a FeatureStoreError, an
interrupt) prints one or two lines naming the culprit and exits non-zero; `--debug` (or
FEATURESTORE_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import List, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from .describe import on_demand_view_dict, registry_dict, service_dict, view_dict
from .errors import FeatureStoreError
from .interrupts import noticing_interrupts
from .retrieval.spine import MAX_SPINE_ROWS
from .server import ServeConfig
from .store import FeatureStore
from .validate import ERROR

console = Console(emoji=False)  # user text such as `file.py:100:` is not an emoji code
err_console = Console(stderr=True, emoji=False)
EXIT_INTERRUPTED = 130
# Output that is not a terminal (a pipe, `make demo`, a CI log) is read whole or by programs:
# tables and lines are never cut or wrapped there. (Rich already leaves colour out of it.)
PIPE_WIDTH = 100_000


def _debug() -> bool:
    return os.environ.get("FEATURESTORE_DEBUG", "") not in ("", "0")


def _exit_without_collecting() -> None:
    """At the command's exit, leave the objects it made to the operating system.

    Python's shutdown runs the cyclic garbage collector over every object still alive, several
    times; after dbt has run in this process (its parsed project, its jinja templates) that took
    0.9-1.5 s of a `featurestore build` here, after the work was done. Frozen objects are skipped
    (the process ends: its memory is returned whole). Connections are closed before this by the
    code that opened them; files and stdio are flushed by their own finalizers as before."""
    if not getattr(_exit_without_collecting, "registered", False):
        atexit.register(gc.freeze)
        _exit_without_collecting.registered = True


class _Boundary(TyperGroup):
    """The one place where exceptions become messages and exit codes."""

    def invoke(self, ctx):
        _exit_without_collecting()
        with noticing_interrupts() as interrupted:
            try:
                result = super().invoke(ctx)
            except (Exception, KeyboardInterrupt) as exc:
                # after Ctrl-C, what fails on the way out (a query cancelled by it, a parse dbt broke
                # off) is the interrupt's doing, not an error of its own
                if not interrupted() or _is_click_control(exc):
                    return self._fail(exc)
            else:
                if not interrupted():
                    return result
            # Ctrl-C came, and something on the way caught it: still an interrupt
            return self._fail(KeyboardInterrupt())

    def _fail(self, exc: BaseException):
        try:
            raise exc
        except FeatureStoreError:
            if _debug():
                raise
            _error(str(exc))
            raise typer.Exit(code=1)
        except KeyboardInterrupt:
            if _debug():
                raise
            _error("the command stopped before it finished; nothing it had not finished is recorded as done (a "
                   "build replaces tables all-or-nothing; a sync's watermark does not move, so the next sync "
                   "writes the rest).", label="interrupted")
            raise typer.Exit(code=EXIT_INTERRUPTED)
        except Exception:  # a bug: say so in one line, the traceback with --debug
            if _is_click_control(exc) or _debug():
                raise
            _error(f"unexpected {type(exc).__name__}: {exc} — this is a bug in featurestore; run again with "
                   "--debug for the traceback and report it.")
            raise typer.Exit(code=2)


def _is_click_control(exc: Exception) -> bool:
    """Click's own exits, aborts and usage errors (it prints those itself). Typer may vendor its
    own copy of click, so they are recognised by what they do, not by one package's classes."""
    return isinstance(exc, (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort,
                            click.ClickException)) or (hasattr(exc, "exit_code") and hasattr(exc, "show"))


class _StderrHandler(logging.Handler):
    """Log lines to whatever sys.stderr is when they are emitted (tests swap it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # a log line must never break a command
            self.handleError(record)


def _error(message: str, label: str = "error") -> None:
    err_console.print(f"[bold red]{label}:[/] {escape(message)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=_Boundary,
    help="A dbt-centric feature store: features are dbt models, the dbt manifest is the registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", envvar="FEATURESTORE_DEBUG",
                                     help="Show tracebacks instead of one-line errors.")):
    if debug:
        os.environ["FEATURESTORE_DEBUG"] = "1"
    for output in (console, err_console):
        output.width = None if output.is_terminal else PIPE_WIDTH  # None: the terminal's width
    logger = logging.getLogger("featurestore")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(_log_level())


def _log_level() -> int:
    """FEATURESTORE_LOG_LEVEL (default warning). The library's JSON event lines (a view synced,
    the scheduler sleeping) are at info: the commands print each event once themselves, as a
    line for people or with --json, so the log repeats them only when asked to."""
    name = os.environ.get("FEATURESTORE_LOG_LEVEL", "warning").strip().upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise FeatureStoreError(f"FEATURESTORE_LOG_LEVEL must be debug, info, warning or error, not {name.lower()!r}.")
    return getattr(logging, name)


# Options every command that opens the project shares, defined once.
ProjectDir = typer.Option(".", "--project-dir", "-p", envvar="FEATURESTORE_PROJECT_DIR",
                          help="The dbt project (folder with dbt_project.yml).")
ProfilesDir = typer.Option(None, "--profiles-dir", envvar="DBT_PROFILES_DIR",
                           help="Folder of profiles.yml (default: dbt's lookup — the project, the current folder, ~/.dbt/).")
Target = typer.Option(None, "--target", "-t", envvar="FEATURESTORE_TARGET", help="dbt target of the profile.")
AsJson = typer.Option(False, "--json", help="Print JSON instead of a table.")
AllowEmpty = typer.Option(False, "--allow-empty", help="Exit 0 when there is no data to measure (default: exit 1).")


def _store(project_dir: str, target: Optional[str], profiles_dir: Optional[str] = None,
           strict: bool = True) -> FeatureStore:
    return FeatureStore(project_dir, target, strict=strict, profiles_dir=profiles_dir)


@app.command("list")
def list_(project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir, as_json: bool = AsJson):
    """List feature views, entities and feature services.

    Example: featurestore list --json
    """
    registry = _store(project_dir, target, profiles_dir).registry
    data = registry_dict(registry)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    views = Table(title="Feature views")
    for column in ("view", "entities", "features", "ttl", "online", "owner"):
        views.add_column(column)
    for view in data["feature_views"]:
        views.add_row(view["name"], ", ".join(view["entities"]), str(len(view["features"])),
                      view["ttl"] or "-", "yes" if view["online"] else "no", view["owner"] or "-")
    entities = Table(title="Entities")
    for column in ("entity", "join keys", "declared in", "description"):
        entities.add_column(column)
    for entity in data["entities"]:
        entities.add_row(entity["name"], ", ".join(entity["join_keys"]), entity["declared_in"], entity["description"])
    services = Table(title="Feature services")
    for column in ("service", "features", "owner"):
        services.add_column(column)
    for service in data["feature_services"]:
        services.add_row(service["name"], str(len(service["features"])), service["owner"] or "-")
    on_demand = Table(title="On-demand views")
    for column in ("view", "request fields", "inputs", "features"):
        on_demand.add_column(column)
    for view in data["on_demand_views"]:
        on_demand.add_row(view["name"], ", ".join(view["request"]) or "-", ", ".join(view["inputs"]) or "-",
                          str(len(view["features"])))
    for table in (views, entities, services, *([on_demand] if data["on_demand_views"] else [])):
        console.print(table)


@app.command()
def describe(name: str = typer.Argument(..., help="A feature view or feature service name."),
             project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir, as_json: bool = AsJson):
    """Show one feature view (its features, keys, TTL) or one feature service.

    Example: featurestore describe customer_features
    """
    registry = _store(project_dir, target, profiles_dir).registry
    if name in registry.feature_views:
        data = view_dict(registry, registry.feature_views[name])
    elif name in registry.services:
        data = service_dict(registry.services[name])
    elif name in registry.on_demand_views:
        data = on_demand_view_dict(registry.on_demand_views[name])
    else:
        raise (FeatureStoreError(
            f"'{name}' is neither a feature view ({', '.join(sorted(registry.feature_views))}) "
            f"nor a feature service ({', '.join(sorted(registry.services)) or 'none'})."))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console.print(f"[bold]{name}[/]  {data['description']}", highlight=False)
    for key, value in data.items():
        if key not in ("name", "description", "features"):
            console.print(f"  {key}: {value}", highlight=False)
    features = data["features"]
    table = Table(title="Features")
    if features and isinstance(features[0], dict):
        for column in ("feature", "type", "expression" if "expression" in features[0] else "window", "description"):
            table.add_column(column)
        for feature in features:
            table.add_row(feature["name"], feature["type"] or "-", feature["window"] or feature.get("expression") or "-",
                          feature["description"])
    else:
        table.add_column("feature")
        for reference in features:
            table.add_row(reference)
    console.print(table)


@app.command()
def validate(project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
             as_json: bool = AsJson):
    """Check the feature metadata in the dbt YAML; exit 1 on errors, 0 on warnings only.

    Example: featurestore validate
    """
    problems = _store(project_dir, target, profiles_dir, strict=False).validate()
    n_errors = sum(problem.severity == ERROR for problem in problems)
    if as_json:
        typer.echo(json.dumps([problem.as_dict() for problem in problems], indent=2))
    else:
        for problem in problems:
            colour = "red" if problem.severity == ERROR else "yellow"
            console.print(f"[{colour}]{escape(str(problem))}[/]", highlight=False, soft_wrap=True)
        summary = f"{n_errors} error(s), {len(problems) - n_errors} warning(s)"
        console.print(f"[bold {'red' if n_errors else 'green'}]{summary}[/]")
    raise typer.Exit(code=1 if n_errors else 0)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def build(ctx: typer.Context, project_dir: str = ProjectDir, target: Optional[str] = Target,
          profiles_dir: Optional[str] = ProfilesDir):
    """Run `dbt build` with the project's profile; extra arguments go to dbt.

    Example: featurestore build --select customer_features+
    """
    _store(project_dir, target, profiles_dir, strict=False).build(*ctx.args)


@app.command()
def parse(project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir):
    """Run `dbt parse` to refresh target/manifest.json.

    Example: featurestore parse
    """
    _store(project_dir, target, profiles_dir, strict=False).parse()


@app.command()
def export(
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Parquet file to write (atomically; its stats inside it)."),
    entities: Optional[str] = typer.Option(None, "--entities", "-e",
                                           help="Entity rows: a .parquet/.csv file, one SELECT query or a relation name."),
    service: Optional[str] = typer.Option(None, "--service", "-s", help="A feature service (exposure of type ml)."),
    features: Optional[List[str]] = typer.Option(None, "--features", "-f", help="view:feature, repeatable."),
    timestamp_column: Optional[str] = typer.Option(None, "--timestamp-column",
                                                   help="The entity rows' point in time (default: event_timestamp)."),
    knowledge_guard: bool = typer.Option(False, "--knowledge-guard",
                                         help="Use only rows created at or before each entity timestamp."),
    full_feature_names: bool = typer.Option(False, "--full-feature-names", help="Name columns view__feature."),
    start: Optional[datetime] = typer.Option(None, help="Without --entities: first time of the spine."),
    end: Optional[datetime] = typer.Option(None, help="Without --entities: last time of the spine."),
    every: str = typer.Option("1d", help="Without --entities: spine step."),
    max_spine_rows: int = typer.Option(MAX_SPINE_ROWS, "--max-spine-rows", min=0,
                                       help="Without --entities: refuse a spine of more entity rows (points x keys); 0: no limit."),
    allow_file_access: bool = typer.Option(False, "--allow-file-access",
                                           help="Let an --entities query read files through the engine (read_csv ...)."),
    show_sql: bool = typer.Option(False, "--show-sql", help="Print how it would run (entity load, join strategy per "
                                  "view and why, the point-in-time SQL) and export nothing."),
    project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
    as_json: bool = AsJson,
):
    """Export a point-in-time training set to Parquet, computed inside the warehouse.

    Example: featurestore export --entities main.churn_labels --timestamp-column label_ts
    --service churn_model --out churn.parquet
    """
    if not out and not show_sql:
        raise FeatureStoreError("Pass --out FILE (or --show-sql to see how the export would run).")
    _one_way(features, service)
    store = _store(project_dir, target, profiles_dir)
    job = store.get_historical_features(
        entities, features or None, feature_service=service, full_feature_names=full_feature_names,
        timestamp_column=timestamp_column, knowledge_guard=knowledge_guard, start=start, end=end, every=every,
        max_spine_rows=max_spine_rows, allow_file_access=allow_file_access)
    if show_sql:
        plan = job.plan()
        if as_json:
            typer.echo(json.dumps({"entity_load": plan.entity_load, "strategies": plan.strategies, "sql": plan.sql},
                                  indent=2))
        else:
            typer.echo(plan.as_text(), nl=False)
        return
    if job.exports_directory:  # Spark: the executors write the files; nothing comes to this process
        with err_console.status(f"Point-in-time join, written by the engine to {out}…"):
            path = job.to_parquet(out)
        if as_json:
            typer.echo(json.dumps({"out": str(path), "rows": job.rows_written}, indent=2))
        else:
            console.print(f"[bold green]wrote[/] {path}/ (Parquet files): {job.rows_written:,} rows", highlight=False)
        return
    with err_console.status(f"Point-in-time join in the warehouse, streamed to {out}…"):
        path = job.to_parquet(out)
    summary = job.summary
    if as_json:
        typer.echo(json.dumps({"out": str(path), **summary.as_dict()}, indent=2))
        return
    console.print(f"[bold green]wrote[/] {path}: {summary.rows:,} rows in {summary.seconds:.2f} s"
                  f" ({summary.null_key_rows:,} with a NULL join key, {summary.null_time_rows:,} without a time)",
                  highlight=False)
    table = Table(title="Training set summary")
    for column in ("feature view", "match rate", "null rate", "features"):
        table.add_column(column)
    for request in job.requests:
        outputs = [output for _, output in request.features]
        null_rate = sum(summary.null_rate[o] for o in outputs) / len(outputs)
        table.add_row(request.view.name, f"{summary.match_rate[request.view.name]:.1%}", f"{null_rate:.1%}",
                      ", ".join(outputs))
    console.print(table)


@app.command()
def replay(exported: str = typer.Argument(..., help="A training set written by `featurestore export`."),
           out: str = typer.Option(..., "--out", "-o", help="Parquet file to write the reproduction to."),
           project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
           as_json: bool = AsJson):
    """Reproduce an exported training set from the warehouse as it was known at its export (its
    manifest is inside the file); writes --out only when the content is identical, else says why.

    Example: featurestore replay out/churn_training.parquet --out churn_again.parquet
    """
    report = _store(project_dir, target, profiles_dir).replay(exported, out)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"[bold green]reproduced[/] {exported} as {report['out']}: {report['rows']:,} rows, identical "
                  f"content (sha256 {report['content_sha256'][:12]}…), as known at "
                  + ", ".join(f"{view} {moment}" for view, moment in report["known_at"].items()), highlight=False)
    if report["manifest_changed"]:
        err_console.print("note: the dbt project changed since the export; the features requested are the same.")


@app.command("import-feast")
def import_feast(path: str = typer.Argument(..., help="The Feast repository: the folder of feature_store.yaml."),
                 out: str = typer.Option(..., "--out", "-o", help="Folder of the dbt project to write (new or existing)."),
                 force: bool = typer.Option(False, "--force", help="Overwrite files the import would write."),
                 package: Optional[str] = typer.Option(None, "--package", help="featurestore's dbt package location "
                                                       "for packages.yml (default: this installation's)."),
                 as_json: bool = AsJson):
    """Translate a Feast feature repository into a dbt project: sources, a feature_view model per
    view with its YAML meta (entities, TTL, online, types), entities, and the feature services as
    `ml` exposures. The Python definitions are parsed, never run, and Feast need not be installed.
    Prints (and writes to feast_import_report.md) what it could not translate, with file and line:
    on-demand views, request and stream sources, label views, placeholders for owners and descriptions.

    Example: featurestore import-feast my_repo/feature_repo --out my_dbt && featurestore build -p my_dbt
    """
    from .feast_import import import_feast as run_import

    result = run_import(path, out, force=force, package=package)
    if as_json:
        typer.echo(json.dumps({"out": str(result.out_dir), "written": list(result.written), "features": result.features,
                               "notes": [str(note) for note in result.notes]}, indent=2))
        return
    console.print(result.report, highlight=False, markup=False)
    console.print(f"wrote {len(result.written)} files under {result.out_dir}; next: featurestore build -p {out}",
                  highlight=False)


online_app = typer.Typer(cls=_Boundary, help="The local DynamoDB endpoint (moto's server on 127.0.0.1).",
                         no_args_is_help=True)
app.add_typer(online_app, name="online")


@online_app.command("up")
def online_up(project_dir: str = ProjectDir,
              port: Optional[int] = typer.Option(None, min=1, max=65535,
                                                 help="Port (default: a free one for the endpoint `auto`, else the configured endpoint's).")):
    """Start the local DynamoDB in the background (recorded under .featurestore/) and wait until it answers.

    Example: featurestore online up
    """
    console.print(f"local DynamoDB answering on {_store(project_dir, None, strict=False).online_up(port)}")


@online_app.command("down")
def online_down(project_dir: str = ProjectDir):
    """Stop the local DynamoDB started by `online up` (its data is lost).

    Example: featurestore online down
    """
    console.print("stopped" if _store(project_dir, None, strict=False).online_down() else "not running")


@app.command()
def sync(
    views: Optional[List[str]] = typer.Argument(None, help="Online feature views (default: all); `status` shows the sync state."),
    full: bool = typer.Option(False, "--full", help="Push every current row, not only those created since the watermark."),
    force: bool = typer.Option(False, "--force", help="With --full: also rewrite items whose stored version equals the "
                               "warehouse's (repairs items changed behind the store's back)."),
    every: Optional[str] = typer.Option(None, "--every", help="Run until SIGTERM/SIGINT: a duration (15m) or a cron expression."),
    build: bool = typer.Option(False, "--build", help="Run `dbt build` for the online views (and what they depend on) first."),
    project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
    as_json: bool = AsJson,
):
    """Push the latest row of every key of the online feature views to DynamoDB. Rows DynamoDB
    cannot hold are set aside and listed (view, key, feature, reason); the rest syncs.

    Example: featurestore sync --every 15m --build      (featurestore sync status: watermarks and lag)
    """
    from .sync import Schedule, run_forever

    store = _store(project_dir, target, profiles_dir)
    if views and views[0] == "status":
        _print_sync_status(store.sync_status(views[1:] or None), as_json)
        return
    schedule = Schedule(every) if every else None  # a bad --every fails before any work

    def once(should_stop) -> None:
        started = datetime.now(timezone.utc)
        _sync_with_progress(store, views, full, force, build, should_stop,
                            lambda result: _print_sync_result(result, as_json))
        if schedule and not as_json and not should_stop():
            console.print(f"next sync at {schedule.next_after(started).isoformat(timespec='seconds')}", highlight=False)

    if schedule:
        run_forever(schedule, once)
        if not as_json:
            console.print("stopped")
    else:
        once(lambda: False)


def _print_sync_status(rows: list[dict], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="Sync status")
    for column in ("view", "watermark", "pending rows", "lag", "rows last pushed", "set aside", "last sync finished"):
        table.add_column(column)
    for row in rows:
        if row["watermark"] is None:
            pending = lag = "never synced from this source"
        elif row["needs_full_sync"]:
            pending = lag = "table rebuilt: next sync is full"
        else:
            pending = f"{row['pending_rows']:,}" if row["pending_rows"] is not None else "-"
            lag = "-" if row["lag_seconds"] is None else f"{row['lag_seconds'] / 3600:.1f} h"
        table.add_row(row["view"], str(row["watermark"]), pending, lag, str(row["rows_last_pushed"]),
                      str(row["rejected_last_sync"]), str(row["last_sync_finished"]))
    console.print(table)
    for row in rows:
        for rejected in row["rejected_examples"]:
            console.print(f"  set aside: {rejected['view']} {rejected['key']} {rejected['feature']}: {rejected['reason']}",
                          highlight=False, markup=False)


def _print_sync_result(result, as_json: bool) -> None:
    """One view's sync, printed as soon as it is done (a pipe or a log sees each view in turn)."""
    if as_json:
        typer.echo(json.dumps(result.__dict__, default=str))
        sys.stdout.flush()
        return
    console.print(f"{result.view}: {result.mode} ({result.reason}), {result.rows_read} rows read, "
                  f"{result.written} written, {result.skipped_stale} kept (stored as new or newer), "
                  f"{len(result.rejected)} set aside, {result.seconds:.2f} s ({result.path})", highlight=False)
    for rejected in result.rejected[:20]:
        err_console.print(f"  set aside: {rejected['view']} {rejected['key']} {rejected['feature']}: "
                          f"{rejected['reason']}", highlight=False, markup=False)
    if len(result.rejected) > 20:
        err_console.print(f"  ... and {len(result.rejected) - 20} more (featurestore sync status)")
    console.file.flush()


def _sync_with_progress(store: FeatureStore, views, full: bool, force: bool, build: bool, should_stop, on_result):
    """FeatureStore.sync, each view's result to on_result when it is done, with a progress bar per
    view on an interactive terminal."""
    if not err_console.is_terminal:
        return store.sync(views, full=full, force=force, build=build, should_stop=should_stop, on_result=on_result)
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as progress:
        def bar(view: str):
            task = progress.add_task(f"sync {view}", total=None)
            return (lambda n: progress.update(task, total=n)), (lambda n: progress.advance(task, n))

        return store.sync(views, full=full, force=force, build=build, should_stop=should_stop, progress=bar,
                          on_result=on_result)


def _one_way(features: list[str] | None, service: str | None) -> None:
    """The SDK's rule (features or a service, not both), before the project is read, in the CLI's words."""
    from .requests import require_one_way

    require_one_way(features, service, ("--features (-f) <view:feature>", "--service (-s) <feature service>"))


@app.command()
def get(
    entity: List[str] = typer.Option(..., "--entity", "-e", help="key=value, repeatable (one entity row)."),
    service: Optional[str] = typer.Option(None, "--service", "-s"),
    features: Optional[List[str]] = typer.Option(None, "--features", "-f", help="view:feature, repeatable."),
    project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
):
    """Read one feature vector from the online store (JSON): the entity keys, typed as their
    columns are declared (an integer key is a number), and per feature its value, status and
    event timestamp. A status says why a value is missing: NOT_FOUND (no item for the key),
    OUTSIDE_MAX_AGE (older than the view's TTL), NULL_VALUE (stored NULL), else PRESENT.

    Example: featurestore get --service churn_model -e customer_id=42 -e store_id=7
    """
    from .online_response import json_value

    row = {}
    for pair in entity:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise FeatureStoreError(f"--entity '{pair}' is not key=value.")
        if name in row:
            raise FeatureStoreError(f"--entity names '{name}' twice.")
        row[name] = value
    _one_way(features, service)
    store = _store(project_dir, target, profiles_dir)
    response = store.get_online_features(features or None, [row], feature_service=service, keys_from_text=True,
                                         refuse_unknown=True)
    vector: dict = {"entity": {}, "features": {}}
    for column in response.columns:
        if column.reference is None:
            vector["entity"][column.name] = json_value(column.values[0], column.dtype)  # keys, request fields
            continue
        moment = column.event_timestamps[0]
        vector["features"][column.name] = {"value": json_value(column.values[0], column.dtype),
                                           "status": column.statuses[0],
                                           "event_timestamp": None if moment is None else json_value(moment)}
    typer.echo(json.dumps(vector, indent=2))


@app.command()
def stats(views: Optional[List[str]] = typer.Argument(None, help="Feature views (default: all)."),
          service: Optional[str] = typer.Option(None, "--service", "-s", help="The views of a feature service."),
          save: bool = typer.Option(True, "--save/--no-save", help="Append to the warehouse's stats history."),
          allow_empty: bool = AllowEmpty,
          project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
          as_json: bool = AsJson):
    """Feature statistics computed in the warehouse: null rate, distinct, range, quantiles, top
    values, freshness and rows per day; kept as history in `featurestore_stats_history`. A view
    with no rows exits 1 ("no data") unless --allow-empty.

    Example: featurestore stats --service churn_model
    """
    results = _store(project_dir, target, profiles_dir).stats(views, feature_service=service, save=save,
                                                              allow_empty=allow_empty)
    if as_json:
        typer.echo(json.dumps(results, indent=2, default=str))
        return
    for entry in results:
        fresh = entry["freshness_seconds"]
        title = (f"{entry['view']}: {entry['rows']:,} rows, newest event {entry['last_event']} "
                 f"({'-' if fresh is None else f'{fresh / 3600:.1f} h ago'}), "
                 f"{entry['rows_per_day'] or 0:,.0f} rows/day")
        table = Table(title=title, title_justify="left")
        for column in ("feature", "null rate", "distinct", "min", "p50", "max", "mean", "top values"):
            table.add_column(column)
        for name, feature in entry["features"].items():
            def number(value):
                return "-" if value is None else f"{value:,.4g}"
            null_rate = "-" if feature["null_rate"] is None else f"{feature['null_rate']:.1%}"
            if feature["kind"] == "number":
                table.add_row(name, null_rate, str(feature["distinct"]), number(feature["min"]),
                              number(feature["quantiles"]["p50"]), number(feature["max"]), number(feature["mean"]), "")
            else:
                top = ", ".join(f"{value} ({n:,})" for value, n in feature["top"])
                table.add_row(name, null_rate, str(feature["distinct"]), "", "", "", "", top)
        console.print(table)


@app.command()
def drift(view: str = typer.Argument(..., help="A feature view."),
          reference: Optional[str] = typer.Option(None, "--reference", help="START:END of event times, e.g. 2024-01-01:2024-02-01."),
          reference_stats: Optional[str] = typer.Option(None, "--reference-stats",
                                                        help="Instead of --reference: a training set exported by `featurestore export` (its stats are inside)."),
          current: str = typer.Option(..., "--current", help="START:END of event times."),
          allow_empty: bool = AllowEmpty,
          project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
          as_json: bool = AsJson):
    """Compare a view's feature distributions between two windows (PSI for numbers, total
    variation distance for categories); exit 1 when a feature breaches its `drift:` threshold, or
    when a window holds no data (unless --allow-empty).

    Example: featurestore drift customer_features --reference 2024-01-01:2024-02-01 --current 2024-02-01:2024-03-01
    """
    from .quality import load_saved_stats, parse_window

    if bool(reference) == bool(reference_stats):
        raise FeatureStoreError("Pass either --reference START:END or --reference-stats FILE.")
    baseline = load_saved_stats(reference_stats) if reference_stats else parse_window(reference, "--reference")
    current_window = parse_window(current, "--current")  # bad options are refused before the project is opened
    results = _store(project_dir, target, profiles_dir).drift(view, baseline, current_window, allow_empty=allow_empty)
    breached = [result for result in results if result.breached]
    if as_json:
        typer.echo(json.dumps([result.as_dict() for result in results], indent=2))
    else:
        table = Table(title=f"Drift of {view}: {reference or reference_stats} vs {current}")
        for column in ("feature", "metric", "value", "threshold", "rows (ref / cur)", "alert"):
            table.add_column(column)
        for result in results:
            value = "-" if result.value is None else f"{result.value:.3f}"
            alert = "[bold red]DRIFT[/]" if result.breached else ("no data" if result.no_data else "ok")
            table.add_row(result.feature, result.metric, value, f"{result.threshold:g}",
                          f"{result.reference_rows:,} / {result.current_rows:,}", alert)
        console.print(table)
    if breached:
        err_console.print(f"[bold red]drift:[/] {', '.join(r.feature for r in breached)} in {view}", highlight=False)
        raise typer.Exit(code=1)


@app.command()
def duplicates(sample: int = typer.Option(2000, min=1, help="Rows (keys and times) to compare values on."),
               project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
               as_json: bool = AsJson):
    """Report pairs of features on the same entity that look like one feature twice: identical or
    perfectly correlated values on a sample, or near-identical names. Reports; deletes nothing.

    Example: featurestore duplicates --sample 5000
    """
    pairs = _store(project_dir, target, profiles_dir).duplicate_features(sample=sample)
    if as_json:
        typer.echo(json.dumps([pair.as_dict() for pair in pairs], indent=2))
        return
    if not pairs:
        console.print("no duplicate features found")
        return
    table = Table(title="Possible duplicate features")
    for column in ("feature", "feature", "why"):
        table.add_column(column)
    for pair in pairs:
        table.add_row(pair.left, pair.right, pair.reason)
    console.print(table)


@app.command()
def audit(view: Optional[str] = typer.Argument(None, help="An online feature view (not with --served)."),
          sample: int = typer.Option(100, min=1, help="Random keys to check."),
          served: bool = typer.Option(False, "--served", help="Audit what the feature server served (its --log-served log)."),
          min_match_rate: float = typer.Option(1.0, "--min-match-rate", help="With --served: exit 1 below this share."),
          project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir,
          as_json: bool = AsJson):
    """Training/serving consistency: online values vs the point-in-time query, now, for random
    keys; exit 1 on any mismatch, listing feature, keys, value and expected value. With --served:
    every vector the server logged, recomputed as the warehouse knew it at its request time.

    Example: featurestore audit customer_features --sample 200; featurestore audit --served --min-match-rate 0.99
    """
    if served:
        if view:
            raise FeatureStoreError("audit --served checks every logged feature; leave out the view name.")
        _audit_served(_store(project_dir, target, profiles_dir).audit_served(min_match_rate), as_json)
        return
    if not view:
        raise FeatureStoreError("Name an online feature view (featurestore audit customer_features), or pass --served.")
    report = _store(project_dir, target, profiles_dir).audit(view, sample=sample)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(f"{view}: {report['keys']} keys x {report['features']} features checked at {report['at']}: "
                      f"{len(report['mismatches'])} mismatch(es)", highlight=False)
        for mismatch in report["mismatches"][:50]:
            console.print(f"  {mismatch['feature']} {mismatch['keys']}: online {mismatch['online']!r}, "
                          f"expected {mismatch['expected']!r}", highlight=False)
    if report["mismatches"]:
        raise typer.Exit(code=1)


def _audit_served(report: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        console.print(f"{report['rows']:,} served values from {report['folder']}", highlight=False)
        for reference, entry in report["features"].items():
            stale = entry["staleness_seconds"]
            console.print(f"  {reference}: {entry['match_rate']:.2%} of {entry['checked']:,} match"
                          + (f" ({entry['in_flight']:,} read while a streaming event's write was in flight)"
                             if entry.get("in_flight") else "")
                          + (f"; {stale['stale_rows']:,} served older than known (behind by {max(stale['median'], 0):.0f} s "
                             f"median, {max(stale['max'], 0):.0f} s at most)" if stale else ""), highlight=False)
            for mismatch in entry["mismatches"][:5]:
                console.print(f"    {mismatch['keys']} at {mismatch['request_time']}: served {mismatch['served']!r} "
                              f"({mismatch['status']}), expected {mismatch['expected']!r}", highlight=False)
    if report["failing"]:
        raise typer.Exit(code=1)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to bind; other than loopback needs API keys."),
          port: int = typer.Option(6566, help="Port (Feast's default)."),
          workers: int = typer.Option(1, min=1, help="Worker processes."),
          api_keys_file: Optional[str] = typer.Option(None, "--api-keys-file", help="File of API keys, one per line "
                                                      "(FEATURESTORE_API_KEYS, comma-separated, also counts)."),
          insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth", help="Serve a non-loopback address without keys."),
          max_entities: int = typer.Option(1000, "--max-entities", min=1, help="Most entity rows per request."),
          push: bool = typer.Option(False, "--push", help="Accept POST /push for views with `push: true`."),
          log_served: float = typer.Option(0.0, "--log-served", min=0.0, max=1.0,
                                           help="Share of requests whose served vectors are logged (0: off)."),
          log_flush_seconds: float = typer.Option(5.0, "--log-flush-seconds", min=0.05, help="How often the log is written."),
          read_timeout: float = typer.Option(ServeConfig.read_timeout_seconds, "--read-timeout", min=0.1,
                                             help="Seconds a client has to send a request's head, and again its body."),
          project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir):
    """Run the HTTP feature server: POST /get-online-features (Feast's request and response shapes),
    POST /push, GET /health, /ready, /metrics (Prometheus), /docs and /openapi.json (behind the API
    key like the data). It reads the manifest once and the online store per request; no warehouse,
    no dbt at request time.

    Example: featurestore serve --port 6566 --workers 4 --api-keys-file keys.txt --host 0.0.0.0
    """
    from .server import run

    try:  # core dependencies, but an environment can lack them (installed --no-deps, or by hand)
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise FeatureStoreError(f"`featurestore serve` needs {exc.name}, which is not installed in {sys.prefix}: "
                                "pip install fastapi uvicorn prometheus-client") from None
    config = _store(project_dir, target, profiles_dir).serve_config(
        host=host, port=port, insecure_no_auth=insecure_no_auth, api_keys_file=api_keys_file,
        max_entities=max_entities, push=push, served_log_fraction=log_served, served_log_flush_seconds=log_flush_seconds,
        read_timeout_seconds=read_timeout)
    _access_log()
    err_console.print(f"serving {config.project_dir} on http://{host}:{port} ({workers} worker(s), "
                      f"auth {'on' if config.authenticated else 'off'}, push {'on' if push else 'off'}, served log {log_served:.0%})",
                      highlight=False)
    run(config, host, port, workers)


def _access_log() -> None:
    """The server's JSON access lines, one per request, on stderr."""
    logger = logging.getLogger("featurestore.access")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@app.command()
def catalog(out: str = typer.Option("site", "--out", "-o", help="Folder to write the pages into."),
            dbt_docs_url: Optional[str] = typer.Option(None, help="Base http(s) URL of the dbt docs site, for links."),
            exports: Optional[str] = typer.Option(None, "--exports", help="Folder of exported training sets to list per service."),
            reference_stats: Optional[str] = typer.Option(None, "--reference-stats",
                                                          help="Measure drift over time against this exported training set."),
            project_dir: str = ProjectDir, target: Optional[str] = Target, profiles_dir: Optional[str] = ProfilesDir):
    """Write a static HTML catalog: every feature with status badges (stale, drifting, failing,
    never synced) and a filter page for each, a page per feature (distribution, drift and null
    rate over the stats history, expectations, lineage, SQL), per view and per service.

    Example: featurestore catalog --out site/ --dbt-docs-url http://localhost:8080 --exports out/
    """
    path = _store(project_dir, target, profiles_dir).write_catalog(out, dbt_docs_url, exports_dir=exports,
                                                                  reference_stats=reference_stats)
    console.print(f"wrote {path}")
