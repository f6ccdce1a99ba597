"""How a request reaches DynamoDB: botocore's client and the wire reads (wire.py) made from
boto3's session, one retry loop bounded by FEATURESTORE_ONLINE_TIMEOUT, the faults given up on
early (nothing listening, a certificate that fails verification), and following the project's
local DynamoDB when `online up` moves it. The online store (dynamodb.py) is built on it.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property

from . import PROBE_SECONDS, NotSent, OnlineStoreError, back_off
from .config import AUTO, OnlineConfig
from .wire import OPERATIONS as WIRE_OPERATIONS, wire_reads

log = logging.getLogger("featurestore")
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 20  # seconds, each capped by the call's deadline (DynamoDBTransport._call)
UNREACHABLE_GRACE = 5.0  # seconds an endpoint refusing connections is retried (a restarting local store)
_ATTEMPT = threading.local()  # `timeout`: the running botocore call's read timeout (_bound_attempt)
# what botocore's standard mode retried (its retries are off: _call's loop is the one), by error code
RETRYABLE = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "RequestTimeout", "TransactionInProgressException",
    "LimitExceededException", "500", "502", "503", "504",
}
_MOVE_LOCK = threading.Lock()  # held while a store moves to where the local DynamoDB runs now (_moved)


class DynamoDBTransport:
    """Requests to one DynamoDB endpoint: `client` (botocore), `_wire` (the reads without
    botocore's per-call work, or None), `_call` (one request, retried until its deadline). A
    subclass gives `config`, `deadline_seconds` and `workers`, and forgets what it
    cached of a server the transport moved away from (`_forget_server`)."""

    config: OnlineConfig
    deadline_seconds: float
    workers: int
    moves: int  # (OnlineStore.moves)

    @cached_property
    def client(self):
        """Made at the first request, so an endpoint that cannot be had (`auto` with no local
        DynamoDB running) is an error of that request, inside its caller's error handling."""
        return self._clients[0]

    @cached_property
    def _wire(self):
        """The read operations over DynamoDB's HTTP API without botocore's per-call work
        (wire.py), or None where botocore carries them too (a proxy)."""
        return self._clients[1]

    @cached_property
    def _clients(self):
        """botocore's client and the wire reads, from boto3's default session (the process's:
        its credentials resolved once, a profile set by `boto3.setup_default_session` honoured):
        one endpoint, region and credentials (boto3's standard chain)."""
        import boto3
        from botocore.config import Config
        from botocore.credentials import Credentials
        from botocore.exceptions import BotoCoreError

        if self.config.endpoint_url == AUTO:  # no local DynamoDB ran at start: perhaps one does now
            self.config = self.config.followed()
        config = self.config  # (read once: another thread may move the store meanwhile)
        endpoint, url = config.client_endpoint(), config.endpoint_url
        try:  # a profile that does not exist, partial credentials, a credential source unreachable
            session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
            core = session._session  # (boto3 names no public accessor for its botocore session)
            credentials, options = session.get_credentials(), {}
        except BotoCoreError as exc:
            raise OnlineStoreError(f"Cannot resolve AWS credentials for DynamoDB (boto3's standard chain: AWS_PROFILE, "
                                   f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, instance metadata): {exc}") from None
        if credentials is None and self.config.is_local:  # a local endpoint accepts any; AWS uses the standard chain
            credentials = Credentials("local", "local")
            options = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        pool = max(10, self.workers * 2)
        try:
            client = session.client(
                "dynamodb", region_name=self.config.region, endpoint_url=endpoint,
                # our own loop retries (with a deadline and a message), botocore not at all: its
                # `max_attempts` counts retries (1 sent each timed-out request twice), `total_max_attempts` tries
                config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                              connect_timeout=min(CONNECT_TIMEOUT, self.deadline_seconds),
                              read_timeout=min(READ_TIMEOUT, self.deadline_seconds), max_pool_connections=pool),
                **options,
            )
            client.meta.events.register("before-call.dynamodb", _bound_attempt)
        except (BotoCoreError, ValueError) as exc:
            raise OnlineStoreError(f"Cannot set up a DynamoDB client for region '{self.config.region}' and endpoint "
                                   f"{self.config.endpoint_url or '(AWS)'}: {exc}") from None
        wire = None
        if credentials is not None and not (endpoint is None and _account_routed(core, credentials)):
            # (no credentials: botocore's own error at the call; account-based endpoints: botocore picks them per call)
            wire = wire_reads(client.meta.endpoint_url, client.meta.region_name, credentials,
                              ca_bundle=core.get_config_variable("ca_bundle"), connect_timeout=CONNECT_TIMEOUT,
                              read_timeout=READ_TIMEOUT, max_idle=pool)
        if wire is None:
            log.debug("DynamoDB reads go through botocore (a proxy, account-based endpoints or no credentials)")
        return client, wire, url  # (the URL they talk to: _moved)

    def _deadline(self) -> float:
        return time.monotonic() + self.deadline_seconds

    def _probe_deadline(self) -> float:
        return time.monotonic() + min(self.deadline_seconds, PROBE_SECONDS)

    def _call(self, operation: str, deadline: float, **request):
        """One request, retried on throttling and connection errors with backoff and jitter until
        the deadline (FEATURESTORE_ONLINE_TIMEOUT), saying so once while it retries. The deadline
        bounds the attempts too: each one's connect and read timeouts are capped by the time left.
        An endpoint that refuses connections (or whose name does not resolve) is retried for
        UNREACHABLE_GRACE seconds at most (a restart), a certificate that fails verification not at
        all: waiting does not mend a configuration."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError

        started, attempt, error = time.monotonic(), 0, None
        while True:
            # per attempt: the project's local DynamoDB may have moved meanwhile (_moved)
            endpoint, wire = self.config.endpoint_url, self._wire if operation in WIRE_OPERATIONS else None
            left = deadline - time.monotonic()
            if left <= 0:
                if error is None:  # (a server's request that waited for a read thread past its timeout)
                    raise NotSent(f"DynamoDB {operation} was not sent: its deadline (FEATURESTORE_ONLINE_TIMEOUT, "
                                  f"{self.deadline_seconds:g} s) had passed before it could be.")
                raise OnlineStoreError(self._failed(operation, started, error))
            unreachable = False
            try:
                if wire is not None:
                    return wire.call(operation, request, timeout=min(READ_TIMEOUT, left)), attempt
                _ATTEMPT.timeout = min(READ_TIMEOUT, left)
                try:
                    return getattr(self.client, operation)(**request), attempt
                finally:
                    _ATTEMPT.timeout = None
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in RETRYABLE:
                    raise
                error = exc
            except BotoCoreError as exc:  # connection refused, reset, timed out
                if attempt == 0 and error is None and isinstance(exc, ConnectionClosedError):
                    error = exc  # a kept connection the server closed (moto closes each): once more at once, quietly
                    continue
                error, cause = exc, _connection_fault(exc)
                if cause == "tls":
                    raise OnlineStoreError(
                        f"TLS to DynamoDB at {self._endpoint_name} failed ({exc}); {operation} was not retried. Check "
                        "the certificate bundle (AWS_CA_BUNDLE, or the profile's ca_bundle) and the endpoint's "
                        "certificate.") from None
                unreachable = cause == "unreachable"
                if unreachable and (self._moved() or self.config.endpoint_url != endpoint):
                    continue  # at once, to where the project's local DynamoDB runs now
                if unreachable and time.monotonic() - started >= UNREACHABLE_GRACE:
                    raise OnlineStoreError(self._failed(operation, started, exc)) from None
            # unreachable: the back-off sleeps until the grace's end at most, for one last try there
            until = min(deadline, started + UNREACHABLE_GRACE) if unreachable else deadline
            attempt += 1
            if attempt == 1 and until - time.monotonic() >= 1:  # (no time left for another: the failure says it all)
                log.warning(f"DynamoDB at {self._endpoint_name} failed {operation} ({error}); "
                            f"retrying for up to {max(0.0, until - time.monotonic()):.0f} s")
            back_off(attempt, until, self._failed(operation, started, error), last_try=until < deadline)

    def _moved(self) -> bool:
        """Whether the project's local DynamoDB this store talked to runs on another port now
        (`online down`, then `online up`): then the store talks to it from now on, with new
        clients and nothing cached of the old server (its tables, pointers, failures)."""
        if self.config.follows is None or "_clients" not in self.__dict__:  # (a client given: not ours to replace)
            return False
        now = self.config.followed()
        with _MOVE_LOCK:  # (not the store's _lock: its holder may be the caller, waiting for this request)
            clients = self.__dict__.get("_clients")
            # (the clients' own URL, not the config's: clients made from the old one while another
            # thread moved are replaced at their first refusal)
            if clients is None or now.endpoint_url in (AUTO, clients[2]):
                return False
            log.warning(f"the project's local DynamoDB moved from {clients[2]} to {now.endpoint_url}: "
                        "talking to it from now on")
            self.config = now
            for name in ("_clients", "client", "_wire"):
                self.__dict__.pop(name, None)
            self.moves += 1
            self._forget_server()
        return True

    def _forget_server(self) -> None:
        """Drop what is cached of the server talked to before (_moved): the store's tables, pointers."""

    @property
    def _endpoint_name(self) -> str:
        return self.config.endpoint_url and self.client.meta.endpoint_url or "AWS"

    def _failed(self, operation: str, started: float, error) -> str:
        """The message of a call given up on: what failed, for how long, the last error."""
        hint = (" Is the endpoint up and answering (`featurestore online up` starts the project's local one)?"
                if self.config.is_local else "")
        return (f"DynamoDB at {self._endpoint_name} is unreachable or failing: {operation} still failed after "
                f"{time.monotonic() - started:.1f} s ({error}).{hint}")


def _bound_attempt(context, **_) -> None:
    """botocore's `before-call` hook: the call's read timeout from the deadline (_ATTEMPT), as
    botocore's per-request `read_timeout` override (a botocore without it keeps the client's)."""
    timeout = getattr(_ATTEMPT, "timeout", None)
    if timeout is not None:
        context["read_timeout"] = timeout


def _connection_fault(exc: BaseException) -> str | None:
    """"tls" for a certificate that fails verification or a CA bundle that cannot be read,
    "unreachable" for a refused connection or a name that does not exist (EAI_NONAME), else None
    (transient: a reset, a timeout, a resolver that failed for now, EAI_AGAIN), from the
    exception's chain (botocore's `error`, urllib3's, the OS's)."""
    import ssl
    import socket

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return "tls"
        if isinstance(exc, ConnectionRefusedError) or (isinstance(exc, socket.gaierror)
                                                       and exc.errno == socket.EAI_NONAME):
            return "unreachable"
        if isinstance(exc, FileNotFoundError) and seen:  # a CA bundle named but absent (botocore's SSLError)
            return "tls"
        cause = getattr(exc, "kwargs", {}).get("error") if isinstance(getattr(exc, "kwargs", None), dict) else None
        exc = next((e for e in (cause, exc.__cause__, exc.__context__, getattr(exc, "reason", None))
                    if isinstance(e, BaseException)), None)
        seen += 1
    return None


def _account_routed(core, credentials) -> bool:
    """Whether botocore sends this session's AWS requests to an account-based endpoint
    (`<account>.ddb.<region>.amazonaws.com`, chosen per call from credentials that carry an
    account id), which the wire reads do not resolve."""
    if core.get_config_variable("account_id_endpoint_mode") == "disabled":
        return False
    return bool(getattr(credentials.get_frozen_credentials(), "account_id", None))
