"""Online-store settings: `vars: featurestore_online:` in dbt_project.yml, overridden by environment.

| setting | var | environment |
|---|---|---|
| endpoint URL (`auto`, the default: this project's local DynamoDB; empty: AWS's own endpoint) | endpoint_url | FEATURESTORE_DYNAMODB_ENDPOINT |
| region | region | FEATURESTORE_AWS_REGION, then AWS_REGION / AWS_DEFAULT_REGION |
| table name prefix | table_prefix | FEATURESTORE_TABLE_PREFIX |
| how long a request is retried before failing, seconds | timeout_seconds | FEATURESTORE_ONLINE_TIMEOUT |

Credentials are never read from our files: boto3's standard chain applies. Against a local
endpoint (a loopback address) without credentials, dummy ones are used, as moto accepts any.

`auto` is the local DynamoDB that `featurestore online up` starts for this project on a free
port and records in `<project>/.featurestore/`, so two projects' local stores (two checkouts
of one repository) never compete for a port; every command of the project reads the port from
there. While `online up` runs a server for the project, a local configured URL is replaced by
that server's URL too (`online up --port N`); a URL set in the environment always wins. A
running process follows the record: an SDK store made before `online up` finds the server at
its first request, and one whose server's port refuses connections after `online down` and
`online up` on another port moves there (`OnlineConfig.followed`, transport._moved).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from ..errors import FeatureStoreError

AUTO = "auto"  # this project's local DynamoDB, on the port `online up` recorded
DEFAULTS = {"endpoint_url": AUTO, "region": "us-east-1", "table_prefix": "featurestore_",
            "timeout_seconds": 60.0}
# DynamoDB table names: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


@dataclass(frozen=True)
class OnlineConfig:
    endpoint_url: str | None
    region: str
    table_prefix: str
    timeout_seconds: float = 60.0
    project_dir: str | None = None  # for messages
    # (the project's state dir, the configured URL) when the URL is the one `online up` records there
    follows: tuple[str, str] | None = None

    def followed(self) -> "OnlineConfig":
        """This config with the URL the project's local DynamoDB is recorded at now (or the
        configured one while none runs); itself when its URL does not follow the record."""
        if self.follows is None:
            return self
        from .local import recorded_url

        state_dir, configured = self.follows
        return replace(self, endpoint_url=recorded_url(Path(state_dir)) or configured)

    @property
    def is_local(self) -> bool:
        """Is the endpoint this project's local DynamoDB or a loopback address (127.0.0.0/8, ::1, localhost)?"""
        return self.endpoint_url == AUTO or is_loopback(self.endpoint_url)

    def client_endpoint(self) -> str | None:
        """The URL a DynamoDB client talks to (None: AWS's own). Refuses `auto` while no local
        DynamoDB runs for the project: there is no port to talk to."""
        if self.endpoint_url == AUTO:
            project = f" -p {self.project_dir}" if self.project_dir else ""
            raise FeatureStoreError(
                f"The online store is this project's local DynamoDB (endpoint_url: auto), which is not running: start "
                f"it with `featurestore online up{project}`, or set FEATURESTORE_DYNAMODB_ENDPOINT.")
        return self.endpoint_url or None

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
    """Whether a URL's host is this machine (localhost, 127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return False
    return is_loopback_host(host)


def is_loopback_host(host: str | None) -> bool:
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
    from_env = "FEATURESTORE_DYNAMODB_ENDPOINT" in env
    if from_env:
        values["endpoint_url"] = env["FEATURESTORE_DYNAMODB_ENDPOINT"]
    follows = None
    if values["endpoint_url"] == AUTO or (not from_env and is_loopback(values["endpoint_url"])):
        from .local import recorded_url

        follows = (str(Path(project_dir) / ".featurestore"), values["endpoint_url"])
        values["endpoint_url"] = recorded_url(Path(follows[0])) or values["endpoint_url"]
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
    return OnlineConfig(values["endpoint_url"] or None, values["region"], values["table_prefix"], timeout,
                        str(project_dir), follows)
