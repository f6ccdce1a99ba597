"""rolling_window agrees with pandas' `rolling(window, closed=...)`, the data scientist's
reference, on date-grained data (events at midnight: the off-by-one that counted two days in
a 1d window) and timestamp-grained data, for closed='right' (the default) and 'both'."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest

from conftest import copy_project, duckdb_path, project_env

pytestmark = pytest.mark.dbt_compat  # rerun on dbt-core 1.11 by `make test-compat`

WINDOWS = {"1d": "1D", "7d": "7D", "2h": "2h"}
MODEL = """{{{{ featurestore.rolling_window(
    source=source('win', 'win_events'), partition_by='k', timestamp_column='ts', spine=source('win', 'win_spine'),
    closed='{closed}',
    aggregates=[{{'name': 'n_1d', 'fn': 'count', 'window': '1d'}}, {{'name': 'n_7d', 'fn': 'count', 'window': '7d'}},
                {{'name': 'sum_7d', 'fn': 'sum', 'column': 'v', 'window': '7d'}}, {{'name': 'n_2h', 'fn': 'count', 'window': '2h'}}]) }}}}
"""


def events_and_spine(seed: int):
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    events, spine = [], []
    for k in range(60):
        daily = k < 30  # date-grained keys: every event and point at midnight
        for _ in range(rng.randint(0, 25)):
            day = start + timedelta(days=rng.randint(0, 30))
            events.append((k, day if daily else day + timedelta(minutes=15 * rng.randint(0, 95)), float(rng.randint(1, 9))))
        points = {start + timedelta(days=d) for d in range(0, 32)} if daily else \
            {start + timedelta(days=rng.randint(0, 31), minutes=15 * rng.randint(0, 95)) for _ in range(30)}
        spine += [(k, t) for t in sorted(points)]
    return events, spine


def pandas_oracle(events, spine, closed: str) -> dict:
    """Per (k, t) of the spine: pandas' rolling count and sum, points placed after the events of
    the same time (so each point's window ends after every event at t)."""
    rows = pd.DataFrame([(k, t, v, 0) for k, t, v in events] + [(k, t, None, 1) for k, t in spine],
                        columns=["k", "ts", "v", "is_point"]).astype({"v": "float64"})
    out = {}
    for k, group in rows.groupby("k"):
        group = group.sort_values(["ts", "is_point"], kind="stable").set_index("ts")
        rolled = {name: group["v"].rolling(width, closed=closed, min_periods=0) for name, width in WINDOWS.items()}
        counts = {name: r.count() for name, r in rolled.items()}
        total = rolled["7d"].sum()
        for position, (ts, is_point) in enumerate(zip(group.index, group["is_point"])):
            if is_point:
                out[(k, ts.to_pydatetime())] = (int(counts["1d"].iloc[position]), int(counts["7d"].iloc[position]),
                                                float(total.iloc[position]), int(counts["2h"].iloc[position]))
    return out


@pytest.fixture(scope="module")
def windows_project(tmp_path_factory):
    from conftest import FIXTURES

    project = copy_project(FIXTURES / "snapshot_project", tmp_path_factory.mktemp("windows") / "project")
    for model in (project / "models").glob("*"):
        model.unlink()
    (project / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: win\n    schema: \"{{ target.schema }}\"\n    tables: [{name: win_events}, {name: win_spine}]\n")
    for closed in ("right", "both"):
        (project / "models" / f"win_{closed}.sql").write_text(MODEL.format(closed=closed))
    events, spine = events_and_spine(seed=11)
    with duckdb.connect(str(duckdb_path(project))) as con:
        con.execute("create table main.win_events (k integer, ts timestamp, v double)")
        con.executemany("insert into main.win_events values (?, ?, ?)", events)
        con.execute("create table main.win_spine (k integer, ts timestamp)")
        con.executemany("insert into main.win_spine values (?, ?)", spine)
    dbt = project_env(project)
    dbt.run("deps", "--quiet")
    dbt.run("run", "--quiet")
    return project, events, spine


@pytest.mark.parametrize("closed", ["right", "both"])
def test_windows_match_pandas(windows_project, closed):
    project, events, spine = windows_project
    expected = pandas_oracle(events, spine, closed)
    with duckdb.connect(str(duckdb_path(project)), read_only=True) as con:
        got = {(k, ts): (n1, n7, float(s7), n2) for k, ts, n1, n7, s7, n2 in
               con.execute(f"select k, ts, n_1d, n_7d, sum_7d, n_2h from main.win_{closed}").fetchall()}
    assert len(got) == len(expected) == len(spine)
    assert got == expected
    # on date-grained data a 1d window holds exactly one day with closed='right', two with 'both'
    daily = [key for key in expected if key[0] < 30]
    by_day = {(k, t): sum(1 for ek, et, _ in events if ek == k and et == t) for k, t in daily}
    if closed == "right":
        assert all(expected[key][0] == by_day[key] for key in daily)
    else:
        assert any(expected[key][0] > by_day[key] for key in daily)
