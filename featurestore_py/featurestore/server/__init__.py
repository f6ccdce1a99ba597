"""`featurestore serve`: the HTTP feature server.

It needs the registry (a dbt manifest.json) and the online store's configuration, nothing else:
no warehouse connection and no dbt at request time. `build_app` wires the pieces; `app_from_env`
is the factory uvicorn's workers call (the CLI passes the settings in FEATURESTORE_SERVE_SETTINGS).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from ..errors import FeatureStoreError

SETTINGS_ENV = "FEATURESTORE_SERVE_SETTINGS"


@dataclass
class ServeConfig:
    project_dir: str
    manifest: str  # path of manifest.json
    api_keys_file: str | None = None  # one key per line; FEATURESTORE_API_KEYS (comma-separated) also counts
    max_entities: int = 1000
    push: bool = False
    served_log_fraction: float = 0.0  # share of requests whose vectors are logged (0: off)
    served_log_flush_seconds: float = 5.0
    responses: str = "featurestore"  # the response style, featurestore or feast (FEATURESTORE_RESPONSES)
    read_timeout_seconds: float = 10.0  # for a request's head, and again for its body (see protocol.py)

    @property
    def authenticated(self) -> bool:
        """Whether requests need an API key (any key configured)."""
        return bool(api_keys(self))


def api_keys(config: ServeConfig) -> tuple[str, ...]:
    keys = [key.strip() for key in os.environ.get("FEATURESTORE_API_KEYS", "").split(",") if key.strip()]
    if config.api_keys_file:
        try:
            text = Path(config.api_keys_file).read_text()
        except OSError as exc:
            raise FeatureStoreError(f"Cannot read the API keys file {config.api_keys_file}: {exc.strerror}") from None
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return tuple(dict.fromkeys(keys))


def build_app(config: ServeConfig):
    from ..online.config import load_online_config
    from ..online.dynamodb import DynamoDBOnlineStore
    from ..online.reader import response_style
    from ..registry import load_manifest, registry_from_manifest
    from .app import ServerSettings, create_app
    from ..landing import ServedLog, landing_dir
    from ..push import Pusher
    from .serving import OnlineServer

    registry = registry_from_manifest(load_manifest(Path(config.manifest)))
    online = DynamoDBOnlineStore(load_online_config(Path(config.project_dir)))
    landing = landing_dir(Path(config.project_dir))
    served_log = ServedLog(landing, config.served_log_fraction, config.served_log_flush_seconds) \
        if config.served_log_fraction > 0 else None
    # a streaming push is answered once its events count: the handler awaits that, off the threads
    pusher = partial(Pusher(registry, online, landing).push_request, wait=False) if config.push else None
    server = OnlineServer(registry, online, config.max_entities, response_style(config.responses))
    settings = ServerSettings(api_keys=api_keys(config), served_log=served_log, pusher=pusher, ready_check=server.ready,
                              body_timeout_seconds=config.read_timeout_seconds)
    return create_app(server, settings)


def app_from_env():
    """The app of the settings the CLI wrote to FEATURESTORE_SERVE_SETTINGS (uvicorn's factory)."""
    config = serve_config_from_env()
    if config is None:
        raise FeatureStoreError(f"{SETTINGS_ENV} is not set: start the server with `featurestore serve`.")
    return build_app(config)


def serve_config_from_env() -> ServeConfig | None:
    """The settings `run` passes its workers in FEATURESTORE_SERVE_SETTINGS (None outside a server)."""
    text = os.environ.get(SETTINGS_ENV)
    return ServeConfig(**json.loads(text)) if text else None


def settings_env(config: ServeConfig) -> str:
    return json.dumps(asdict(config))


def run(config: ServeConfig, host: str, port: int, workers: int = 1) -> None:
    """Serve until stopped: uvicorn's workers each build the app from the settings in the environment.
    Its HTTP protocol is httptools' with a deadline and a size limit for each request's head
    (protocol.py), on uvloop's event loop (measured: benchmarks/bench_serving.py)."""
    import uvicorn

    os.environ[SETTINGS_ENV] = settings_env(config)
    uvicorn.run("featurestore.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning", http="featurestore.server.protocol:HeadTimeoutProtocol",
                loop="auto")  # uvloop where it is installed (a dependency, not on Windows)
