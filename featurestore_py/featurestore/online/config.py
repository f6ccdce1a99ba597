"""Online-store settings: `vars: featurestore_online:` in dbt_project.yml, overridden by environment.

| setting | var | environment |
|---|---|---|
| endpoint URL (empty: AWS's own endpoint) | endpoint_url | FEATURESTORE_DYNAMODB_ENDPOINT |
| region | region | FEATURESTORE_AWS_REGION, then AWS_REGION / AWS_DEFAULT_REGION |
| table name prefix | table_prefix | FEATURESTORE_TABLE_PREFIX |
| how long a request is retried before failing, seconds | timeout_seconds | FEATURESTORE_ONLINE_TIMEOUT |

Credentials are never read from our files: boto3's standard chain applies. Against a local
endpoint (a loopback address) without credentials, dummy ones are used, as moto accepts any.
While `featurestore online up` runs a local server for this project, a local configured
endpoint is replaced by that server's URL (its port may differ: `online up --port N`); an
endpoint set in the environment always wins.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from ..errors import FeatureStoreError

DEFAULTS = {"endpoint_url": "http://127.0.0.1:8766", "region": "us-east-1", "table_prefix": "featurestore_",
            "timeout_seconds": 60.0}
# DynamoDB table names: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


@dataclass(frozen=True)
class OnlineConfig:
    endpoint_url: str | None
    region: str
    table_prefix: str
    timeout_seconds: float = 60.0

    @property
    def is_local(self) -> bool:
        """Does the endpoint name a loopback address (127.0.0.0/8, ::1, localhost)?"""
        return is_loopback(self.endpoint_url)

    @property
    def local_port(self) -> int | None:
        try:
            return urlsplit(self.endpoint_url or "").port
        except ValueError:
            return None

    def table_name(self, view: str) -> str:
        name = f"{self.table_prefix}{view}"
        if not TABLE_NAME.match(name):
            raise FeatureStoreError(
                f"DynamoDB table name '{name}' (prefix '{self.table_prefix}' + view '{view}') is invalid: "
                "it must be 3-255 characters of letters, digits, '_', '-' and '.'."
            )
        return name

    @property
    def state_table(self) -> str:
        return self.table_name("_sync_state")


def is_loopback(url: str | None) -> bool:
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_online_config(project_dir: Path, env: dict | None = None) -> OnlineConfig:
    env = {**os.environ, **(env or {})}
    values = dict(DEFAULTS)
    project_file = Path(project_dir) / "dbt_project.yml"
    if project_file.is_file():
        settings = ((yaml.safe_load(project_file.read_text()) or {}).get("vars") or {}).get("featurestore_online") or {}
        values.update({k: v for k, v in settings.items() if k in DEFAULTS and v is not None})
    if "FEATURESTORE_DYNAMODB_ENDPOINT" in env:
        values["endpoint_url"] = env["FEATURESTORE_DYNAMODB_ENDPOINT"]
    elif is_loopback(values["endpoint_url"]):
        from .local import recorded_url

        values["endpoint_url"] = recorded_url(Path(project_dir) / ".featurestore") or values["endpoint_url"]
    region = env.get("FEATURESTORE_AWS_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        values["region"] = region
    if "FEATURESTORE_TABLE_PREFIX" in env:
        values["table_prefix"] = env["FEATURESTORE_TABLE_PREFIX"]
    if env.get("FEATURESTORE_ONLINE_TIMEOUT"):
        values["timeout_seconds"] = env["FEATURESTORE_ONLINE_TIMEOUT"]
    try:
        timeout = float(values["timeout_seconds"])
        if not 0 < timeout < 86400:
            raise ValueError
    except (TypeError, ValueError):
        raise FeatureStoreError(f"The online store's timeout_seconds (FEATURESTORE_ONLINE_TIMEOUT) must be a number of "
                                f"seconds between 0 and 86400, not {values['timeout_seconds']!r}.") from None
    if not isinstance(values["table_prefix"], str) or not isinstance(values["region"], str):
        raise FeatureStoreError("vars: featurestore_online: table_prefix and region must be strings.")
    return OnlineConfig(values["endpoint_url"] or None, values["region"], values["table_prefix"], timeout)
