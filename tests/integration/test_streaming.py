"""Streaming window features, online against offline by proof: events pushed (through the SDK,
and through two real server processes at once), read online while they arrive, then the view
built by dbt (the `stream_windows` macro over the landed events) and every value read compared
with the point-in-time value at the read's time — by the test, and by `featurestore audit --served`.

The events are randomized: bursts, out-of-order events (seconds to minutes late, a few in the
future), events later than every window, retried pushes with the same ids (and, once, other
values: the first push wins everywhere), NULL amounts, extreme and negative numbers, event times
written with other time zones' offsets."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from conftest import FIXTURES, copy_project, project_env
from featurestore import FeatureStore
from featurestore.errors import RequestError
from featurestore.quality.audit import same_value

from test_server import server

BIN = Path(sys.executable).parent
VIEW = "card_events"


def build_stream_project(root: Path, endpoint: str, prefix: str) -> tuple[Path, dict]:
    project = copy_project(FIXTURES / "stream_project", root / "project")
    env = {"FEATURESTORE_DYNAMODB_ENDPOINT": endpoint, "FEATURESTORE_TABLE_PREFIX": prefix}
    project_env(project, **env).run("build", "--quiet")
    return project, env


@pytest.fixture(scope="module")
def stream_project(tmp_path_factory, moto_server):
    return build_stream_project(tmp_path_factory.mktemp("stream"), moto_server, "stream_")


def features(store: FeatureStore) -> list[str]:
    return [feature.reference for feature in store.registry.view(VIEW).features]


def stamp(moment: datetime, rng: random.Random) -> str:
    """The instant written with a random zone's offset (or Z, or naive UTC)."""
    zone = rng.choice([None, timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))])
    if zone is None:
        return moment.replace(tzinfo=None).isoformat()
    return moment.astimezone(zone).isoformat()


def random_events(rng: random.Random, count: int, cards: int, burst: int) -> list[dict]:
    """`count` events of `cards` cards, stamped around now."""
    now = datetime.now(timezone.utc)
    events = []
    for index in range(count):
        late = rng.choice([0.0] * 6 + [2.0, 4.0, 12.0, 30.0, 55.0, 75.0, 200.0, -1.5])  # >60 s: every window closed
        amount = rng.choice([None, 0.0, -3.25, 1e-120, 1e12, 12.5, round(rng.uniform(0, 500), 2)])
        events.append({"card_id": f"card-{rng.randrange(cards)}", "event_at": stamp(now - timedelta(seconds=late + rng.random()), rng),
                       "txn_id": f"b{burst}-{index}", "amount": amount, "items": rng.choice([None, 0, 1, 2, 7, 10**12])})
    return events


def compare(store: FeatureStore, reads: list[tuple[datetime, list[str], dict]]) -> tuple[int, int, int, list]:
    """(values compared, non-empty values, mismatches, examples): each read against the training
    set at its own time, with the knowledge guard."""
    references = features(store)
    cards = [card for _, keys, _ in reads for card in keys]
    times = [at for at, keys, _ in reads for _ in keys]
    frame = pa.table({"card_id": cards, "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC"))})
    offline = store.get_historical_features(frame, references, knowledge_guard=True).to_arrow().to_pydict()
    compared = present = 0
    examples = []
    row = 0
    for at, keys, online in reads:
        for index, card in enumerate(keys):
            for reference in references:
                name = reference.split(":")[1]
                served, expected = online[name][index], offline[name][row]
                compared += 1
                present += served not in (None, 0)
                if not same_value(served, expected):
                    examples.append((at.isoformat(), card, name, served, expected))
            row += 1
    return compared, present, len(examples), examples[:10]


@pytest.mark.dbt_compat
def test_online_equals_the_training_set_at_every_read(stream_project):
    """Pushed through the SDK in bursts, read online after each, then built: every value equal."""
    project, env = stream_project
    store = FeatureStore(project, env=env)
    rng = random.Random(23)
    references = features(store)
    reads, pushed = [], []
    for burst in range(10):
        events = random_events(rng, 40, cards=5, burst=burst)
        answer = store.push(VIEW, events)
        assert answer["rows"] == 40 and answer["written_online"] + answer["windows_closed"] == 40, answer
        pushed += events
        if burst % 3 == 1:  # a retry of earlier events, some with other values: changes nothing
            retry = [dict(event, amount=999.0) for event in rng.sample(pushed, 10)]
            again = store.push(VIEW, retry)
            assert again["written_online"] == 0 and again["duplicates"] + again["windows_closed"] == 10, again
        keys = [f"card-{k}" for k in range(6)]  # card-5 never has events
        at = datetime.now(timezone.utc)
        reads.append((at, keys, store.get_online_features(references, entity_rows=[{"card_id": k} for k in keys],
                                                          now=at).to_dict()))
        time.sleep(rng.uniform(0.5, 2.5))  # windows of 5 s and 20 s open and close between reads
    huge = [{"card_id": "card-huge", "event_at": datetime.now(timezone.utc).isoformat(), "txn_id": f"h{n}",
             "amount": 1.0, "items": 2 ** 62} for n in range(2)]
    store.push(VIEW, huge)  # their sum is past a bigint: NULL online and offline, not a failed build
    at = datetime.now(timezone.utc)
    reads.append((at, ["card-huge"], store.get_online_features(references, entity_rows=[{"card_id": "card-huge"}],
                                                               now=at).to_dict()))
    assert reads[-1][2]["items_1m"] == [None] and reads[-1][2]["txns_1m"] == [2]
    build_started = datetime.now(timezone.utc).replace(tzinfo=None)  # the build keeps change points up to its clock
    project_env(project, **env).run("build", "--quiet", "--select", VIEW)
    built = FeatureStore(project, env=env)
    compared, present, mismatches, examples = compare(built, reads)
    assert mismatches == 0, examples
    assert compared == (10 * 6 + 1) * len(references) and present > compared // 3  # not a comparison of NULLs
    assert all(value is None for value in reads[-2][2]["txns_1m"][5:])  # the card without events
    assert 999.0 not in [value for _, _, online in reads for value in online["min_amount_20s"]]
    assert_edges_match_the_rule(built, project, build_started)


def assert_edges_match_the_rule(store: FeatureStore, project: Path, built_before: datetime) -> None:
    """The macro against the Python rule at the exact instants values change — an event's time
    and push (and a microsecond before), its time plus each window (and a microsecond before) —
    for every landed event: the rows the training set reads there equal streaming.aggregate's."""
    from featurestore.landing import read_folder
    from featurestore.streaming import aggregate, landed_events, stream_spec

    view = store.registry.view(VIEW)
    spec = stream_spec(view)
    events = landed_events(read_folder(project / "landing" / VIEW), ["card_id"], spec, view.event_timestamp,
                           view.created_timestamp)
    tick = timedelta(microseconds=1)
    points = sorted({(key[0], moment) for key, found in events.items() for event in found
                     for edge in [event["time"], event["known"], *[event["time"] + a.window for a in spec.aggregates]]
                     for moment in (edge, edge - tick) if moment <= built_before})
    frame = pa.table({"card_id": [card for card, _ in points],
                      "event_timestamp": pa.array([moment for _, moment in points], pa.timestamp("us"))})
    offline = store.get_historical_features(frame, features(store), knowledge_guard=True).to_arrow().to_pylist()
    wrong = []
    for (card, moment), row in zip(points, offline):
        expected = aggregate(spec, events[(card,)], moment) or {}
        wrong += [(card, moment.isoformat(), name, row[name], expected.get(name)) for name in spec.feature_types
                  if not same_value(row[name], expected.get(name))]
    assert len(points) > 1000 and not wrong, wrong[:10]


def test_pushes_are_checked_whole_before_anything_is_written(stream_project):
    project, env = stream_project
    store = FeatureStore(project, env=env)
    now = datetime.now(timezone.utc).isoformat()
    landing = project / "landing" / VIEW
    before = sorted(landing.glob("*.parquet")) if landing.exists() else []
    good = {"card_id": "card-x", "event_at": now, "txn_id": "ok-1", "amount": 1.0, "items": 1}
    cases = {
        "NaN": ([good, dict(good, txn_id="bad", amount=float("nan"))], "amount"),
        "pushed_at from a client": ([dict(good, pushed_at=now)], "pushed_at"),
        "a fraction for an integer": ([dict(good, items=1.5)], "items"),
        "no event time": ([dict(good, event_at=None)], "event_at"),
        "a key over 2 KB": ([dict(good, card_id="k" * 3000)], "entity key"),
        "the year 9999": ([dict(good, event_at="9999-12-31T23:00:00")], "event time"),
        "the year 9999 in another zone": ([dict(good, event_at="9999-12-31T23:00:00-05:00")], "event_at"),
        "a lone surrogate": ([dict(good, txn_id="\ud800")], "txn_id"),
    }
    for case, (rows, named) in cases.items():
        with pytest.raises(RequestError) as failure:
            store.push(VIEW, rows)
        assert named in str(failure.value), (case, str(failure.value))
    for to in ("online", "offline"):  # the two would count different events
        with pytest.raises(RequestError, match="streaming view"):
            store.push(VIEW, [good], to=to)
    assert (sorted(landing.glob("*.parquet")) if landing.exists() else []) == before  # nothing landed
    online = store.get_online_features([f"{VIEW}:txns_1m"], entity_rows=[{"card_id": "card-x"}]).to_dict()
    assert online["txns_1m"] == [None]  # nothing written online either


def test_many_concurrent_reads_of_several_keys_all_finish(stream_project):
    """Reads share a pool of threads with a fixed size: more concurrent multi-key reads than it
    has threads, while a push runs, must all be answered (a read that waited inside the pool for
    its own sub-tasks once starved it)."""
    project, env = stream_project
    store = FeatureStore(project, env=env)
    now = datetime.now(timezone.utc).isoformat()
    store.push(VIEW, [{"card_id": f"many-{n}", "event_at": now, "txn_id": "t", "amount": 1.0, "items": 1} for n in range(3)])
    answers: list = []

    def read():
        answers.append(store.get_online_features([f"{VIEW}:txns_1m"], entity_rows=[{"card_id": f"many-{n}"} for n in range(3)]
                                                 ).to_dict()["txns_1m"])

    threads = [threading.Thread(target=read, daemon=True) for _ in range(40)]
    for thread in threads:
        thread.start()
    store.push(VIEW, [{"card_id": "many-9", "event_at": now, "txn_id": f"t{n}", "amount": 1.0, "items": 1} for n in range(50)])
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "reads hung"
    assert answers == [[1, 1, 1]] * 40


def test_sync_of_a_streaming_view_says_there_is_nothing_to_sync(stream_project):
    project, env = stream_project
    result = subprocess.run([str(BIN / "featurestore"), "sync", VIEW, "-p", str(project)], env={**os.environ, **env},
                            capture_output=True, text=True)
    assert result.returncode != 0 and "streaming view" in result.stderr and "Traceback" not in result.stderr


def test_a_replay_through_two_servers_audits_with_no_mismatch(tmp_path, moto_server):
    """3,000 events (TEST_REPLAY_EVENTS: 10,000 took 317 s on moto) in bursts through two server
    processes at once (the same keys on both; retries sent to the other server), reads logged by
    both while it runs; then one dbt build and `featurestore audit --served`: every served value
    equals the training set's at its time."""
    project, env = build_stream_project(tmp_path, moto_server, "replay_")
    rng = random.Random(2323)
    total = int(os.environ.get("TEST_REPLAY_EVENTS", "3000"))
    bursts = []  # (seed, size): each burst's events are made when it is sent, stamped around then
    while sum(size for _, size in bursts) < total:
        bursts.append((rng.randrange(10**9), rng.choice([1, 5, 20, 50, 100, 200])))
    references = features(FeatureStore(project, env=env))
    failures: list[str] = []
    stop = threading.Event()
    with server(project, env, "--push", "--log-served", "1", "--log-flush-seconds", "1") as (first, _), \
            server(project, env, "--push", "--log-served", "1", "--log-flush-seconds", "1") as (second, _):
        urls = [first, second]
        queue = list(enumerate(bursts))
        lock = threading.Lock()

        def pusher(worker: int):
            session = requests.Session()
            while True:
                with lock:
                    if not queue:
                        return
                    index, (seed, size) = queue.pop(0)
                events = random_events(random.Random(seed), size, cards=40, burst=index)
                body = {"push_source_name": VIEW, "df": {column: [event[column] for event in events] for column in events[0]}}
                for attempt, url in enumerate([urls[index % 2], urls[(index + 1) % 2]] if index % 7 == 0 else [urls[index % 2]]):
                    # bursts are re-sent to the other server now and then: a retry after a lost answer
                    answer = session.post(url + "/push", json=body, timeout=120)
                    if answer.status_code != 200:
                        failures.append(f"push {index} to {url}: {answer.status_code} {answer.text[:300]}")
                    elif attempt == 1 and answer.json()["written_online"]:
                        failures.append(f"a retried push wrote again: {answer.json()}")

        def reader(worker: int):
            session = requests.Session()
            while not stop.is_set():
                cards = [f"card-{rng.randrange(42)}" for _ in range(3)]
                answer = session.post(urls[worker % 2] + "/get-online-features",
                                      json={"features": references, "entities": {"card_id": cards}}, timeout=60)
                if answer.status_code != 200:
                    failures.append(f"read: {answer.status_code} {answer.text[:300]}")
                stop.wait(0.02)

        pushers = [threading.Thread(target=pusher, args=(n,)) for n in range(4)]
        readers = [threading.Thread(target=reader, args=(n,)) for n in range(2)]
        for thread in pushers + readers:
            thread.start()
        for thread in pushers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
    assert not failures, failures[:5]
    project_env(project, **env).run("build", "--quiet", "--select", VIEW)
    audit = subprocess.run([str(BIN / "featurestore"), "audit", "--served", "--json", "-p", str(project)],
                           env={**os.environ, **env}, capture_output=True, text=True)
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    checked = sum(entry["checked"] for entry in report["features"].values())
    mismatched = {name: entry["mismatches"][:3] for name, entry in report["features"].items() if entry["mismatches"]}
    assert not mismatched, mismatched
    in_flight = sum(entry["in_flight"] for entry in report["features"].values())
    assert in_flight <= checked // 50, f"{in_flight} of {checked} values read while a write was in flight"
    assert len(report["features"]) == len(references) and checked >= 100 * len(references)
