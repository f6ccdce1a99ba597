"""Push ingestion (the SDK's `FeatureStore.push` and the server's POST /push): rows for a feature view with `push: true` in its meta, written to the landing
area (durably, atomically: landing.write_file) and then to the online store with its
conditional write (never an older version over a newer one: pushes and syncs interleave
safely). A push returns only when both writes are done; the landing file is the record the
view's dbt model reads (`featurestore.pushed_rows`), so the next `dbt build` puts pushed rows into
the snapshot tables and training sets see what serving saw.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from .errors import RequestError
from .frames import arrow_type
from .landing import write_file
from .online import OnlineStore
from .registry import FeatureView, Registry
from .requests import online_table, require_online

DESTINATIONS = ("online", "offline", "online_and_offline")
MAX_PUSH_ROWS = 10_000


class Pusher:
    def __init__(self, registry: Registry, online: OnlineStore, landing: Path):
        self.registry = registry
        self.online = online
        self.landing = Path(landing)

    def push_request(self, body: Any) -> dict:
        """Feast's push request: {"push_source_name": view, "df": {column: [values]}, "to": ...}."""
        if not isinstance(body, dict):
            raise RequestError("The push body must be a JSON object with `push_source_name` and `df`.")
        unknown = sorted(set(body) - {"push_source_name", "df", "to"})
        if unknown:
            raise RequestError(f"Unknown field(s) {', '.join(map(repr, unknown))}; expected push_source_name, df, to.")
        name, frame, to = body.get("push_source_name"), body.get("df"), body.get("to", "online_and_offline")
        if not isinstance(name, str) or not name:
            raise RequestError("`push_source_name` must name a feature view with `push: true`.")
        if not isinstance(frame, dict) or not frame or not all(isinstance(v, list) for v in frame.values()):
            raise RequestError("`df` must be an object of column -> list of values.")
        lengths = {len(values) for values in frame.values()}
        if len(lengths) != 1 or not lengths.pop():
            raise RequestError("Every column of `df` must have the same, non-zero number of values.")
        rows = [dict(zip(frame, values)) for values in zip(*frame.values())]
        return self.push(name, rows, to)

    def push(self, view_name: str, rows: list[Mapping[str, Any]], to: str = "online_and_offline") -> dict:
        if to not in DESTINATIONS:
            raise RequestError(f"`to` must be one of {', '.join(DESTINATIONS)}, not {to!r}.")
        view = self.registry.view(view_name)  # NotFound: 404
        if view.meta.get("push") is not True:
            raise RequestError(f"Feature view '{view_name}' does not accept pushes (`push: true` in its meta, {view.yaml_path}).")
        if to != "offline":
            require_online([view], "pushed online (push with to='offline')")
        if len(rows) > MAX_PUSH_ROWS:
            raise RequestError(f"{len(rows):,} rows in one push; the limit is {MAX_PUSH_ROWS:,}.", status=413)
        table = self._table(view, rows)
        written = None
        if to != "online":
            written = write_file(self.landing / view.name, "push", table)
        report = None
        if to != "offline":
            online = online_table(self.registry, view)
            self.online.ensure_table(online)
            records = table.to_pylist()
            for record in records:
                record["event_timestamp"] = record[view.event_timestamp]
                record["created_timestamp"] = record[view.created_timestamp] if view.created_timestamp else None
            report = self.online.write(online, records)
            if report.rejected:
                raise RequestError("The online store cannot hold: " + "; ".join(
                    f"{r.key} {r.feature}: {r.reason}" for r in report.rejected[:5])
                    + (" (the rows are in the landing area)" if written else ""))
        return {"view": view.name, "rows": len(rows), "landed": str(written) if written else None,
                "written_online": report.written if report else 0,
                "skipped_older": report.skipped_stale if report else 0}

    def _table(self, view: FeatureView, rows: list[Mapping[str, Any]]) -> pa.Table:
        """The rows as an Arrow table of the view's columns and declared types; a missing created
        timestamp is the time the push arrived."""
        keys = self.registry.join_keys(view)
        required = [*keys, view.event_timestamp]
        received = datetime.now(timezone.utc).replace(tzinfo=None)
        columns: dict[str, list] = {name: [] for name in view.columns}
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise RequestError(f"Row {index} is not an object of column -> value.")
            unknown = sorted(set(row) - set(view.columns))
            if unknown:
                raise RequestError(f"Row {index}: {', '.join(map(repr, unknown))} are not columns of '{view.name}' "
                                 f"({', '.join(view.columns)}).")
            for name in required:
                if row.get(name) is None:
                    raise RequestError(f"Row {index}: '{name}' is required (a join key or the event timestamp of '{view.name}').")
            for name in view.columns:
                value = row.get(name)
                if name in (view.event_timestamp, view.created_timestamp) and value is not None:
                    value = _timestamp(value, index, name)
                if name == view.created_timestamp and value is None:
                    value = received
                columns[name].append(value)
        arrays = []
        for name, values in columns.items():
            kind = arrow_type(view.columns.get(name))
            if name in (view.event_timestamp, view.created_timestamp):
                kind = pa.timestamp("us")
            try:
                arrays.append(pa.array(values, type=kind) if kind is not None else pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise RequestError(f"Column '{name}' of '{view.name}' ({view.columns.get(name) or 'no declared type'}): "
                                 f"{str(exc).splitlines()[0]}") from None
        return pa.table(arrays, names=list(columns))


def _timestamp(value: Any, index: int, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RequestError(f"Row {index}: '{name}' = {value!r} is not an ISO 8601 timestamp.") from None
    else:
        raise RequestError(f"Row {index}: '{name}' must be an ISO 8601 timestamp string.")
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment
