"""One training-set export in a process of its own, for tests that run it under a memory limit
(tests/integration/test_postgres.py sets RLIMIT_AS before this starts).

argv[1]: JSON {"project", "target", "env", "entity_query", "feature_service", "timestamp_column", "out"}.
Prints one JSON line: the rows written and the process's peak virtual size (VmPeak) and peak
resident size (VmHWM) in bytes, from /proc/self/status.
"""

from __future__ import annotations

import json
import sys


def peaks() -> dict[str, int]:
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return {key: int(status[key].split()[0]) * 1024 for key in ("VmPeak", "VmHWM")}


def main() -> None:
    args = json.loads(sys.argv[1])
    from featurestore import FeatureStore

    store = FeatureStore(args["project"], args["target"], env=args["env"])
    job = store.get_historical_features(args["entity_query"], feature_service=args["feature_service"],
                                        timestamp_column=args["timestamp_column"])
    job.to_parquet(args["out"])
    print(json.dumps({"rows": job.summary.rows, **peaks()}), flush=True)


if __name__ == "__main__":
    main()
