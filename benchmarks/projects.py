"""Benchmark projects made from benchmarks/snapshot_project (shared by the benchmark scripts)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def online_snapshot_project(destination: Path) -> Path:
    """A copy of snapshot_project with its view online, the tests' profile and this repository
    as its package."""
    shutil.copytree(HERE / "snapshot_project", destination)
    shutil.copy2(REPO / "profiles" / "profiles.yml", destination / "profiles.yml")
    (destination / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    schema = destination / "models" / "schema.yml"
    schema.write_text(schema.read_text().replace("owner: bench@example.com", "owner: bench@example.com\n          online: true"))
    return destination


CARD_PROFILE_SQL = """-- A batch feature view of the stream project's entity: one row per card, {{ var('bench_cards') }} cards.
select 'c' || cast(i as varchar) as card_id,
       timestamp '2026-01-01' as profile_at,
       timestamp '2026-01-01 01:00:00' as loaded_at,
       cast((hash(i, 1) % 100) * 100 as double) as credit_limit,
       cast(hash(i, 2) % 3650 as bigint) as account_age_days,
       'tier' || cast(hash(i, 3) % 4 as varchar) as card_tier,
       'country' || cast(hash(i, 4) % 30 as varchar) as home_country,
       cast(hash(i, 5) % 10000 as double) / 100 as avg_txn_amount,
       cast(hash(i, 6) % 500 as bigint) as txns_total,
       cast(hash(i, 7) % 3 as bigint) as chargebacks,
       cast(hash(i, 8) % 1000 as double) / 1000 as risk_score
from range({{ var('bench_cards') }}) t(i)
"""

CARD_PROFILE_YAML = """
  - name: card_profile
    description: A card's profile, computed in batch and synced (the batch view beside the streaming one).
    config:
      materialized: feature_view
      meta:
        featurestore:
          entities: [card]
          event_timestamp: profile_at
          created_timestamp: loaded_at
          online: true
          owner: bench@example.com
    columns:
      - {name: card_id, description: Card id., data_type: varchar}
      - {name: profile_at, description: When the profile holds from., data_type: timestamp}
      - {name: loaded_at, description: When it was loaded., data_type: timestamp}
      - {name: credit_limit, description: x, data_type: double}
      - {name: account_age_days, description: x, data_type: bigint}
      - {name: card_tier, description: x, data_type: varchar}
      - {name: home_country, description: x, data_type: varchar}
      - {name: avg_txn_amount, description: x, data_type: double}
      - {name: txns_total, description: x, data_type: bigint}
      - {name: chargebacks, description: x, data_type: bigint}
      - {name: risk_score, description: x, data_type: double}
"""


def stream_and_batch_project(destination: Path, cards: int) -> Path:
    """tests/fixtures/stream_project (streaming view card_events, entity card) with its windows
    60 times longer (5 s, 20 s, 1 min become 5 min, 20 min, 1 h, names too: txns_1h), so events
    pushed at a run's start stay in the longest window while it reads them on a loaded machine;
    plus a batch online view of the same entity, card_profile: `cards` keys c0, c1, ..., eight
    features like card_events' eight aggregates. The tests' profile and this repository as its
    package."""
    shutil.copytree(REPO / "tests" / "fixtures" / "stream_project", destination,
                    ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    shutil.copy2(REPO / "profiles" / "profiles.yml", destination / "profiles.yml")
    (destination / "packages.yml").write_text(f"packages:\n  - local: {REPO}\n")
    (destination / "models" / "card_profile.sql").write_text(CARD_PROFILE_SQL)
    schema = destination / "models" / "schema.yml"
    text = schema.read_text()
    for short, long in (("1m", "1h"), ("5s", "5m"), ("20s", "20m")):  # in aggregate names and windows
        text = re.sub(rf"\b(\w+_)?{short}\b", lambda match: (match.group(1) or "") + long, text)
    for short, long in (("5 seconds", "5 minutes"), ("20 seconds", "20 minutes"), ("last minute", "last hour"),
                        ("seconds to a minute", "minutes to an hour")):  # and in descriptions
        text = text.replace(short, long)
    schema.write_text(text + CARD_PROFILE_YAML)
    with (destination / "dbt_project.yml").open("a") as project:
        project.write(f"vars:\n  bench_cards: {int(cards)}\n")
    return destination
