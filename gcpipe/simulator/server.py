"""The Genesys Cloud simulator: one HTTP server on 127.0.0.1 serving login and API paths.

Shapes follow the team's Genesys reference (copied here, the reference is not
read at run time):

* ``POST /oauth/token``: client credentials, ``Authorization: Basic
  base64(id:secret)``, form ``grant_type=client_credentials``; answers
  ``{"access_token", "token_type": "bearer", "expires_in"}``; a bad client gets
  ``400 {"error": "unauthorized_client", ...}``.
* ``PATCH /api/v2/conversations/{c}/participants/{p}/attributes`` with
  ``{"attributes": {str: str}}``, merged into the participant's data; the
  response is empty (2xx; 202 here, as the SDK's void return suggests).
* ``PUT /api/v2/conversations/{c}/tags`` with ``{"externalTag": "..."}``.
* ``GET/PUT /api/v2/integrations/{id}/config/current`` (IntegrationConfiguration:
  name, version, properties, advanced, notes, credentials); the PUT carries the
  version it read, a stale one gets 409.
* Errors use the ``ErrorBody`` shape (message, code, status, contextId, details,
  errors); 429 adds ``limit{key,namespace,value}`` and a ``Retry-After`` header
  (seconds). Every response carries ``inin-correlation-id``.
* ``request.bytes.max`` is 512000 (413 above it).

Genesys's rate limits (``RateLimits``), each a sliding window over admitted API
requests (a 429 does not spend quota; whether Genesys counts rejected requests
is not documented): ``token.rate.per.minute`` (300 requests per minute per
access token, on by default) and an optional org-wide limit (``other limits
apply per org and per service``), set as requests per second over a window
(60 s by default: Genesys states its limits per minute). Above either, the
answer is 429 with ``Retry-After`` (seconds until the window admits a request
again, rounded up) and the body code ``too.many.requests.retry.after``.
``requests_per_second()`` counts every API request and 429 by wall-clock
second, for the benchmarks. ``set_rate_limit`` is a separate fault switch (a
1 s fixed window, checked before authentication) kept for the 429-storm tests.

Outside Genesys's API, for the operator of a running local stack:

* ``GET /sim/writes[?conversationId=C]``: every write recorded so far, oldest
  first, as ``{"writes": [{"method", "kind", "conversation_id",
  "participant_id", "time", "attributes" | "external_tag" | "version"}]}``.
  Only what the write set (attribute names and values, a tag, a config
  version); an integration config's properties and credentials are left out.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

REQUEST_BYTES_MAX = 512_000
DEFAULT_TOKEN_TTL_SECONDS = 86400  # Genesys default lifetime; configurable per client from 5 min to 48 h
DEFAULT_HANG_SECONDS = 30.0  # longer than any sane client read timeout, bounded so stop() never waits on it
TOKEN_RATE_PER_MINUTE = 300  # Genesys token.rate.per.minute: API requests per minute per access token
ORG_LIMIT_KEY = "org.app.user.rate.per.minute"  # the limit key the org-wide 429 names (Genesys's limits table)
TOKEN_LIMIT_KEY = "token.rate.per.minute"

_ATTRIBUTES = re.compile(r"^/api/v2/conversations/(?P<c>[^/]+)/participants/(?P<p>[^/]+)/attributes$")
_TAGS = re.compile(r"^/api/v2/conversations/(?P<c>[^/]+)/tags$")
_INTEGRATION_CONFIG = re.compile(r"^/api/v2/integrations/(?P<i>[^/]+)/config/current$")

_DEFAULT_ERRORS = {
    400: ("bad.request", "The request could not be understood by the server due to malformed syntax."),
    401: ("bad.credentials", "Invalid login credentials."),
    403: (
        "missing.permissions",
        "Unable to perform the requested action. You are missing the following permission(s).",
    ),
    404: ("not.found", "The requested resource was not found."),
    408: ("request.timeout", "The request timed out."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    413: ("request.entity.too.large", f"The request is over the limit of {REQUEST_BYTES_MAX} bytes."),
    415: (
        "unsupported.media.type",
        "Unsupported Media Type - Unsupported or incorrect media type, such as an incorrect Content-Type value in the header.",
    ),
    500: (
        "internal.server.error",
        "The server encountered an unexpected condition which prevented it from fulfilling the request.",
    ),
    502: ("bad.gateway", "The server received an invalid response from an upstream server."),
    503: (
        "service.unavailable",
        "Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).",
    ),
    504: ("gateway.timeout", "The request timed out."),
}


def error_body(status: int, message: str | None = None, code: str | None = None, **extra: Any) -> dict[str, Any]:
    """Genesys's ErrorBody for ``status`` (the shape every non-2xx API answer has)."""
    default_code, default_message = _DEFAULT_ERRORS.get(status, ("error", "Error."))
    return {
        "message": message or default_message,
        "code": code or default_code,
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": [],
        **extra,
    }


def rate_limited_body(retry_after: int, per_minute: int | None = None, key: str = ORG_LIMIT_KEY) -> dict[str, Any]:
    """The 429 body. The message text (with its brackets) is Genesys's."""
    return error_body(
        429,
        message=f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds",
        code="too.many.requests.retry.after",
        limit={"key": key, "namespace": "platform.api", "value": per_minute or 3000},
    )


class SlidingWindowLimit:
    """At most ``limit`` admitted requests in any ``window_seconds``: the times of the admitted ones, kept
    while they are inside the window. Not thread-safe: the simulator calls it under its lock."""

    def __init__(self, limit: float, window_seconds: float):
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("a rate limit needs a positive count and window")
        self.limit, self.window = limit, window_seconds
        self._admitted: deque[float] = deque()

    def wait(self, now: float) -> float | None:
        """None when a request at ``now`` fits in the window; else the seconds until one does."""
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            return None
        return self._admitted[len(self._admitted) - math.ceil(self.limit)] + self.window - now

    def admit(self, now: float) -> None:
        self._admitted.append(now)

    @property
    def per_minute(self) -> int:
        return int(round(self.limit * 60 / self.window))


class FixedWindowLimit(SlidingWindowLimit):
    """At most ``limit`` admitted requests per window aligned on multiples of ``window_seconds`` (a counter
    that resets, like the ``inin-ratelimit-reset`` header Genesys used to send suggests); Retry-After is the
    time to the next reset."""

    def wait(self, now: float) -> float | None:
        start = math.floor(now / self.window) * self.window
        while self._admitted and self._admitted[0] < start:
            self._admitted.popleft()
        return None if len(self._admitted) < self.limit else start + self.window - now


WINDOWS = {"sliding": SlidingWindowLimit, "fixed": FixedWindowLimit}


@dataclass(frozen=True)
class RequestSecond:
    """API requests the simulator answered in one wall-clock second (``second`` = int(time.time()))."""

    second: int
    requests: int
    http_429: int


@dataclass(frozen=True)
class SimulatedWrite:
    """One accepted write (an effect on Genesys state)."""

    method: str
    path: str
    conversation_id: str | None
    participant_id: str | None
    body: Any
    time: float = field(default_factory=time.time)


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    retry_after_header: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an abandoned simulator never blocks interpreter exit; stop() joins them itself
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs under concurrent clients (1 s retransmit)


class GenesysSimulator:
    def __init__(
        self,
        client_id: str = "sim-client",
        client_secret: str = "sim-secret",
        token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
        rate_limit_per_second: float | None = None,
        *,
        port: int = 0,
        known_conversations_only: bool = False,
        token_rate_per_minute: int | None = TOKEN_RATE_PER_MINUTE,
        org_rate_limit_per_second: float | None = None,
        org_rate_window_seconds: float = 60.0,
        org_rate_window_kind: str = "sliding",
        clock: Callable[[], float] = time.time,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self._port = port
        # When set, writes to conversations/participants not added with add_conversation() get 404.
        self.known_conversations_only = known_conversations_only
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        self._integrations: dict[str, dict[str, Any]] = {}
        self._other_clients: dict[str, str] = {}  # add_client(): e.g. the operator's, beside the runtime client
        self._token_ttl = token_ttl_seconds
        self._clear_state()
        self._rate_per_second = rate_limit_per_second
        self._rate_retry_after: int | None = None
        self._rate_header = True
        self._clock = clock  # wall-clock seconds: Genesys's limits and the per-second counts (injectable for tests)
        self._token_rate_per_minute = token_rate_per_minute
        self._org_limit: SlidingWindowLimit | None = None
        self.set_org_rate_limit(org_rate_limit_per_second, org_rate_window_seconds, kind=org_rate_window_kind)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "GenesysSimulator":
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="genesys-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release held (hung) requests, close every socket and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections, handlers = list(self._connections), list(self._handler_threads)
        for conn in connections:  # unblock handler threads waiting on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        for t in handlers:
            t.join(timeout=5)
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "GenesysSimulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    # ---------------------------------------------------------------- setup

    def add_integration(self, integration_id: str, config: dict[str, Any]) -> None:
        with self._lock:
            self._integrations[integration_id] = json.loads(json.dumps(config))

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Another OAuth client the token endpoint accepts (Genesys orgs have one per job: runtime, operator)."""
        with self._lock:
            self._other_clients[client_id] = client_secret

    def _known_client(self, credentials: tuple[str, str] | None) -> bool:
        if credentials is None:
            return False
        with self._lock:
            return (
                credentials == (self.client_id, self.client_secret)
                or self._other_clients.get(credentials[0]) == credentials[1]
            )

    def integration(self, integration_id: str) -> dict[str, Any] | None:
        with self._lock:
            config = self._integrations.get(integration_id)
            return json.loads(json.dumps(config)) if config is not None else None

    def add_conversation(self, conversation_id: str, participant_ids: list[str] | tuple[str, ...] = ()) -> None:
        with self._lock:
            self._conversations.setdefault(conversation_id, set()).update(participant_ids)

    def set_token_ttl(self, seconds: int) -> None:
        with self._lock:
            self._token_ttl = seconds

    # ---------------------------------------------------------------- faults

    def set_rate_limit(
        self, per_second: float | None, retry_after: int | None = None, *, retry_after_header: bool = True
    ) -> None:
        """Limit API calls to ``per_second`` (a 1 s fixed window; None = no limit).

        ``retry_after`` fixes the Retry-After value; by default it is the time
        left in the window, rounded up. ``retry_after_header=False`` omits the
        header (the body message still names N).
        """
        with self._lock:
            self._rate_per_second = per_second
            self._rate_retry_after = retry_after
            self._rate_header = retry_after_header
            self._window_start, self._window_count = time.monotonic(), 0

    def set_token_rate_limit(self, per_minute: int | None) -> None:
        """Genesys's per-token limit: ``per_minute`` API requests per minute per access token (None = off)."""
        with self._lock:
            self._token_rate_per_minute = per_minute
            self._token_windows.clear()

    def set_org_rate_limit(
        self, per_second: float | None, window_seconds: float = 60.0, *, kind: str = "sliding"
    ) -> None:
        """An org-wide limit: ``per_second`` x ``window_seconds`` API requests in any ``window_seconds``
        (``kind`` "sliding"), or per window aligned on multiples of it ("fixed"), whatever the token; None = off.
        Genesys does not document which; sliding is the stricter (no double burst across a boundary)."""
        if kind not in WINDOWS:
            raise ValueError(f"window kind must be one of {', '.join(WINDOWS)}")
        with self._lock:
            self._org_limit = WINDOWS[kind](per_second * window_seconds, window_seconds) if per_second else None

    def fail_next(
        self, n: int, status: int = 503, *, retry_after: int | None = None, retry_after_header: bool = True
    ) -> None:
        """The next ``n`` API requests (not token requests) get ``status`` with an ErrorBody.

        ``status=429`` sends the real rate-limit body, with ``Retry-After: retry_after``
        (default 1) unless ``retry_after_header`` is False.
        """
        with self._lock:
            for _ in range(n):
                self._faults.append(_Fault(status, retry_after, retry_after_header))

    def fail_token_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` token requests get ``status``."""
        with self._lock:
            self._token_faults.extend([status] * n)

    def set_latency(self, seconds: float, *, token_seconds: float | None = None) -> None:
        """Delay every API response by ``seconds`` (and token responses by ``token_seconds``, when given)."""
        with self._lock:
            self._latency = max(0.0, seconds)
            if token_seconds is not None:
                self._token_latency = max(0.0, token_seconds)

    def hang_next(self, n: int, seconds: float = DEFAULT_HANG_SECONDS) -> None:
        """Hold the next ``n`` API requests for ``seconds`` (or until stop()), then drop them unanswered."""
        with self._lock:
            self._hangs.extend([seconds] * n)

    def reset_next(self, n: int) -> None:
        """Reset the connection of the next ``n`` API requests (TCP RST, no answer), as a load balancer dropping it."""
        with self._lock:
            self._resets += n

    def _take_reset(self) -> bool:
        with self._lock:
            if self._resets <= 0:
                return False
            self._resets -= 1
            return True

    def revoke_tokens(self) -> None:
        """Every token issued so far gets 401 from now on (as after a client secret reset)."""
        with self._lock:
            self._tokens.clear()

    def reset(self) -> None:
        """Forget writes, counters, tokens, participant data and faults. Integrations are kept."""
        with self._lock:
            self._clear_state()
            self._rate_per_second = None
            if self._org_limit is not None:
                self._org_limit = type(self._org_limit)(self._org_limit.limit, self._org_limit.window)

    def _clear_state(self) -> None:
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._token_fetches = 0
        self._requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._writes: list[SimulatedWrite] = []
        self._attributes: dict[tuple[str, str], dict[str, str]] = {}
        self._tags: dict[str, str] = {}
        self._conversations: dict[str, set[str]] = {}
        self._faults: deque[_Fault] = deque()
        self._token_faults: deque[int] = deque()
        self._hangs: deque[float] = deque()
        self._resets = 0
        self._latency = 0.0
        self._token_latency = 0.0
        self._issued: list[str] = []
        self._window_start, self._window_count = time.monotonic(), 0
        self._token_windows: dict[str, SlidingWindowLimit] = {}
        self._per_second: dict[int, list[int]] = {}  # wall-clock second -> [API requests, 429s]

    # ---------------------------------------------------------------- observations

    @property
    def writes(self) -> list[SimulatedWrite]:
        with self._lock:
            return list(self._writes)

    def writes_for(self, conversation_id: str) -> list[SimulatedWrite]:
        with self._lock:
            return [w for w in self._writes if w.conversation_id == conversation_id]

    def writes_report(self, conversation_id: str | None = None) -> dict[str, Any]:
        """What ``GET /sim/writes`` answers (see the module docstring)."""
        writes = self.writes_for(conversation_id) if conversation_id else self.writes
        return {"writes": [_write_view(w) for w in writes]}

    @property
    def token_fetches(self) -> int:
        """Tokens issued (successful fetches)."""
        with self._lock:
            return self._token_fetches

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token issued since start/reset (for leak checks on logs)."""
        with self._lock:
            return list(self._issued)

    def request_count(
        self, path_prefix: str | None = None, *, method: str | None = None, status: int | None = None
    ) -> int:
        with self._lock:
            return sum(
                1
                for m, p, s in self._requests
                if (path_prefix is None or p.startswith(path_prefix))
                and (method is None or m == method)
                and (status is None or s == status)
            )

    def requests_per_second(self) -> list[RequestSecond]:
        """API requests (any answer, incl. 429) and 429s per wall-clock second, in time order; seconds
        without a request are left out. Token requests are not API requests (they have their own limits)."""
        with self._lock:
            return [RequestSecond(s, n, limited) for s, (n, limited) in sorted(self._per_second.items())]

    def attributes_of(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        """The participant's current merged attributes."""
        with self._lock:
            return dict(self._attributes.get((conversation_id, participant_id), {}))

    def external_tag_of(self, conversation_id: str) -> str | None:
        with self._lock:
            return self._tags.get(conversation_id)

    # ---------------------------------------------------------------- request handling (server threads)

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._requests.append((method, path, status))
            if path.startswith("/api/"):
                counts = self._per_second.setdefault(int(self._clock()), [0, 0])
                counts[0] += 1
                counts[1] += status == 429

    def _genesys_limit(self, authorization: str) -> tuple[int, str, int] | None:
        """Genesys's own limits for an authenticated API request: None (admitted, counted against the
        token's and the org's windows) or (Retry-After seconds, limit key, limit per minute)."""
        token = authorization.partition(" ")[2]
        with self._lock:
            now = self._clock()
            windows: list[tuple[SlidingWindowLimit, str]] = []
            if self._token_rate_per_minute:
                window = self._token_windows.get(token)
                if window is None:
                    window = self._token_windows[token] = SlidingWindowLimit(self._token_rate_per_minute, 60.0)
                windows.append((window, TOKEN_LIMIT_KEY))
            if self._org_limit is not None:
                windows.append((self._org_limit, ORG_LIMIT_KEY))
            for window, key in windows:  # both must have room before either counts the request
                wait = window.wait(now)
                if wait is not None:
                    return max(1, math.ceil(wait)), key, window.per_minute
            for window, _ in windows:
                window.admit(now)
            return None

    def _issue_token(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self._token_latency:
            self._stopping.wait(self._token_latency)
        with self._lock:
            if self._token_faults:
                status = self._token_faults.popleft()
                return status, error_body(status)
        if form.get("grant_type") != ["client_credentials"]:
            return 400, {
                "error": "unsupported_grant_type",
                "description": "grant_type must be client_credentials",
                "error_description": "grant_type must be client_credentials",
            }
        if not self._known_client(_basic_credentials(authorization)):
            return 400, {
                "error": "unauthorized_client",
                "description": "client not found",
                "error_description": "client not found",
            }
        token = secrets.token_urlsafe(32)
        with self._lock:
            ttl = self._token_ttl
            self._tokens[token] = time.monotonic() + ttl
            self._issued.append(token)
            self._token_fetches += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": ttl}

    def _token_valid(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token)
            if expires is None:
                return False
            if time.monotonic() >= expires:
                del self._tokens[token]
                return False
            return True

    def _pre_api(self) -> tuple[float | None, float, _Fault | None, int | None]:
        """Consume the faults that apply to this API request: (hang, latency, fault, rate-limit retry-after)."""
        with self._lock:
            hang = self._hangs.popleft() if self._hangs else None
            fault = self._faults.popleft() if self._faults else None
            limited = None
            if fault is None and self._rate_per_second is not None:
                now = time.monotonic()
                if now - self._window_start >= 1.0:
                    self._window_start, self._window_count = now, 0
                self._window_count += 1
                if self._window_count > self._rate_per_second:
                    left = 1.0 - (now - self._window_start)
                    limited = self._rate_retry_after if self._rate_retry_after is not None else max(1, math.ceil(left))
            return hang, self._latency, fault, limited

    def _write_attributes(self, conversation_id: str, participant_id: str, body: Any, path: str) -> tuple[int, Any]:
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            return 400, error_body(
                400,
                message="attributes must be an object of string to string",
                code="bad.request",
                errors=[{"message": "attributes: must be a map of string to string"}],
            )
        with self._lock:
            missing = self._unknown(conversation_id, participant_id)
            if missing:
                return 404, error_body(404, message=f"{missing} not found")
            self._attributes.setdefault((conversation_id, participant_id), {}).update(attributes)
            self._writes.append(SimulatedWrite("PATCH", path, conversation_id, participant_id, body))
        return 202, None

    def _write_tag(self, conversation_id: str, body: Any, path: str) -> tuple[int, Any]:
        tag = body.get("externalTag") if isinstance(body, dict) else None
        if not isinstance(tag, str):
            return 400, error_body(
                400, message="externalTag must be a string", errors=[{"message": "externalTag: required"}]
            )
        with self._lock:
            missing = self._unknown(conversation_id, None)
            if missing:
                return 404, error_body(404, message=f"{missing} not found")
            self._tags[conversation_id] = tag
            self._writes.append(SimulatedWrite("PUT", path, conversation_id, None, body))
        return 202, None

    def _unknown(self, conversation_id: str, participant_id: str | None) -> str | None:
        if not self.known_conversations_only:
            return None
        if conversation_id not in self._conversations:
            return "conversation"
        if participant_id is not None and participant_id not in self._conversations[conversation_id]:
            return "participant"
        return None

    def _integration_config(self, method: str, integration_id: str, body: Any, path: str) -> tuple[int, Any]:
        with self._lock:
            current = self._integrations.get(integration_id)
            if current is None:
                return 404, error_body(404, message=f"integration {integration_id} not found")
            if method == "GET":
                return 200, json.loads(json.dumps(current))
            if not isinstance(body, dict) or not isinstance(body.get("version"), int):
                return 400, error_body(400, message="IntegrationConfiguration with an integer version is required")
            if body["version"] != current.get("version"):
                return 409, error_body(
                    409,
                    message=f"version {body['version']} is stale; the current version is {current.get('version')}",
                    code="conflict",
                )
            stored = {**json.loads(json.dumps(body)), "version": current.get("version", 0) + 1}
            self._integrations[integration_id] = stored
            self._writes.append(SimulatedWrite("PUT", path, None, None, body))
            return 200, json.loads(json.dumps(stored))


def _write_view(write: SimulatedWrite) -> dict[str, Any]:
    body = write.body if isinstance(write.body, dict) else {}
    view: dict[str, Any] = {
        "method": write.method,
        "conversation_id": write.conversation_id,
        "participant_id": write.participant_id,
        "time": write.time,
    }
    if _ATTRIBUTES.match(write.path):
        view.update(kind="participant attributes", attributes=dict(body.get("attributes") or {}))
    elif _TAGS.match(write.path):
        view.update(kind="external tag", external_tag=body.get("externalTag"))
    else:
        view.update(kind="integration config", path=write.path, version=body.get("version"))
    return view


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if sep else None


def _handler_for(sim: GenesysSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is exercised
        timeout = 60  # idle keep-alive connections are closed eventually

        def setup(self) -> None:
            super().setup()
            with sim._lock:
                sim._connections.add(self.connection)
                sim._handler_threads.add(threading.current_thread())

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass
            with sim._lock:
                sim._connections.discard(self.connection)
                sim._handler_threads.discard(threading.current_thread())

        def handle(self) -> None:
            try:
                super().handle()
            except (OSError, ValueError):
                pass  # client went away, or stop() shut the socket

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            # Recorded before the answer leaves: a client that has its answer sees it counted.
            sim._record(self.command, self._path, status)
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("inin-correlation-id", str(uuid.uuid4()))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _read_body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > REQUEST_BYTES_MAX:
                self.close_connection = True
                return None
            return self.rfile.read(length) if length else b""

        def _dispatch(self) -> None:
            self._path = urlsplit(self.path).path
            raw = self._read_body()
            if raw is None:
                return self._send(413, error_body(413))
            authorization = self.headers.get("Authorization", "")
            if self._path == "/oauth/token":
                if self.command != "POST":
                    return self._send(405, error_body(405, message="method not allowed", code="method.not.allowed"))
                status, body = sim._issue_token(authorization, parse_qs(raw.decode("utf-8", "replace")))
                return self._send(status, body)
            if self._path == "/sim/writes":
                if self.command != "GET":
                    return self._send(405, error_body(405, message="method not allowed", code="method.not.allowed"))
                conversation = parse_qs(urlsplit(self.path).query).get("conversationId", [None])[0]
                return self._send(200, sim.writes_report(conversation))
            if not self._path.startswith("/api/v2/"):
                return self._send(404, error_body(404))
            self._api(authorization, raw)

        def _api(self, authorization: str, raw: bytes) -> None:
            if sim._take_reset():
                sim._record(self.command, self._path, 0)  # 0: no answer
                # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            hang, latency, fault, limited = sim._pre_api()
            if hang is not None:
                sim._stopping.wait(hang)
                sim._record(self.command, self._path, 0)  # 0: no answer
                self.close_connection = True
                return
            if latency:
                sim._stopping.wait(latency)
            if fault is not None:
                if fault.status == 429:
                    retry_after = fault.retry_after if fault.retry_after is not None else 1
                    headers = {"Retry-After": str(retry_after)} if fault.retry_after_header else {}
                    return self._send(429, rate_limited_body(retry_after), headers)
                return self._send(fault.status, error_body(fault.status))
            if limited is not None:
                headers = {"Retry-After": str(limited)} if sim._rate_header else {}
                per_minute = int((sim._rate_per_second or 0) * 60) or None
                return self._send(429, rate_limited_body(limited, per_minute), headers)
            if not sim._token_valid(authorization):
                if not authorization:
                    return self._send(
                        401,
                        error_body(
                            401,
                            message="No authentication bearer token specified in authorization header.",
                            code="authentication.required",
                        ),
                    )
                return self._send(401, error_body(401))
            if over := sim._genesys_limit(authorization):
                retry_after, key, per_minute = over
                return self._send(
                    429, rate_limited_body(retry_after, per_minute, key), {"Retry-After": str(retry_after)}
                )
            body: Any = None
            if self.command in ("PATCH", "PUT", "POST"):
                if "application/json" not in self.headers.get("Content-Type", ""):
                    return self._send(415, error_body(415))
                try:
                    body = json.loads(raw or b"null")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return self._send(400, error_body(400, message="The request body is not valid JSON"))
            if m := _ATTRIBUTES.match(self._path):
                if self.command != "PATCH":
                    return self._send(405, error_body(405, message="method not allowed", code="method.not.allowed"))
                return self._send(*sim._write_attributes(m["c"], m["p"], body, self._path))
            if m := _TAGS.match(self._path):
                if self.command != "PUT":
                    return self._send(405, error_body(405, message="method not allowed", code="method.not.allowed"))
                return self._send(*sim._write_tag(m["c"], body, self._path))
            if m := _INTEGRATION_CONFIG.match(self._path):
                if self.command not in ("GET", "PUT"):
                    return self._send(405, error_body(405, message="method not allowed", code="method.not.allowed"))
                return self._send(*sim._integration_config(self.command, m["i"], body, self._path))
            return self._send(404, error_body(404))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    return Handler
