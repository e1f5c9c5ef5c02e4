"""``GenesysClient``: the one place the pipeline talks HTTP to Genesys Cloud.

Retries belong to the state machine, which retries by error name, so this client
retries only what is safe and cheap inside one invocation:
* a connection that never got established (urllib3 ``connect`` retry: the request
  was not sent, so even a PATCH is safe);
* one token refresh after a 401;
* a 429 whose Retry-After is short (<= ``max_inline_retry_after_seconds``),
  slept in the Lambda a bounded number of times.
Everything else maps to a named error at once:
429 -> GenesysRateLimited(retry_after); 5xx/408/timeouts/connection errors ->
GenesysUnavailable; 400/404/409/413/415 (and other 4xx) -> GenesysRejected;
403 -> GenesysForbidden; 401 after a refresh -> GenesysBadCredentials.
Every failure is logged with Genesys's ``inin-correlation-id`` (support asks for it).
"""

from __future__ import annotations

import json as jsonlib
import time
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import quote

import urllib3
from aws_lambda_powertools.metrics import MetricUnit
from urllib3.exceptions import HTTPError

from ..errors import (
    GenesysBadCredentials,
    GenesysError,
    GenesysForbidden,
    GenesysRateLimited,
    GenesysRejected,
    GenesysUnavailable,
)
from ..observability import logger, metrics
from ..outcomes import METRIC_GENESYS_LATENCY, METRIC_GENESYS_RATE_LIMITED
from ..settings import GenesysSettings
from .oauth import CONTAINER_CACHE, TokenCache, TokenProvider, parse_retry_after
from .secrets import ClientCredentials, load_client_credentials
from .transport import failure_name, http_pool, is_timeout, request_timeout

PARTICIPANT_ATTRIBUTES = "/api/v2/conversations/{conversationId}/participants/{participantId}/attributes"
CONVERSATION_TAGS = "/api/v2/conversations/{conversationId}/tags"
INTEGRATION_CONFIG = "/api/v2/integrations/{integrationId}/config/current"

MAX_INLINE_RATE_LIMIT_RETRIES = 2  # then Step Functions' backoff takes over

ACCEPT_JSON = {"Accept": "application/json"}
SEND_JSON = {**ACCEPT_JSON, "Content-Type": "application/json"}


class RequestGate(Protocol):
    """The environment's shared request budget, seen from the client (genesys_pipeline.budget.BudgetGate)."""

    def before_request(self, method: str, path: str) -> None:
        """Return when the request may go; raise GenesysRateLimited while the environment is paused."""
        ...

    def rate_limited(self, retry_after: float) -> None:
        """A 429: pause the whole environment for ``retry_after`` seconds."""
        ...


class GenesysClient:
    def __init__(
        self,
        settings: GenesysSettings,
        credentials: ClientCredentials | Callable[[], ClientCredentials] | None = None,
        *,
        http: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        gate: RequestGate | None = None,
        token_cache: TokenCache = CONTAINER_CACHE,
    ):
        """``credentials`` defaults to the Secrets Manager secret ``settings.secret_name`` (cached by Powertools);
        ``token_cache`` to the container's (module scope)."""
        self.settings = settings
        if credentials is None:
            credentials = lambda: load_client_credentials(settings.secret_name, max_age=settings.secret_max_age_seconds)  # noqa: E731
        elif isinstance(credentials, ClientCredentials):
            credentials = (lambda fixed: lambda: fixed)(credentials)
        self._http = http or http_pool()
        self._timeout = (settings.connect_timeout_seconds, settings.read_timeout_seconds)
        self._sleep = sleep
        self._clock = clock
        self._gate = gate
        self.tokens = TokenProvider(
            settings.login_base_url,
            credentials,
            http=self._http,
            timeout=self._timeout,
            refresh_margin_seconds=settings.token_refresh_margin_seconds,
            clock=clock,
            cache=token_cache,
        )

    # ------------------------------------------------------------------ API

    def patch_participant_attributes(
        self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]
    ) -> None:
        """Merge ``attributes`` into the participant's data (Genesys answers an empty 2xx)."""
        self._request(
            "PATCH",
            PARTICIPANT_ATTRIBUTES,
            {"conversationId": conversation_id, "participantId": participant_id},
            json={"attributes": dict(attributes)},
        )

    def put_external_tag(self, conversation_id: str, external_tag: str) -> None:
        """Set the conversation's external tag (permission conversation:externalTag:edit)."""
        self._request("PUT", CONVERSATION_TAGS, {"conversationId": conversation_id}, json={"externalTag": external_tag})

    def get_integration_config(self, integration_id: str) -> dict[str, Any]:
        config: dict[str, Any] = self._request("GET", INTEGRATION_CONFIG, {"integrationId": integration_id}).json()
        return config

    def put_integration_config(self, integration_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """PUT carries the version that was read; a concurrent edit makes it GenesysRejected (409)."""
        saved: dict[str, Any] = self._request(
            "PUT", INTEGRATION_CONFIG, {"integrationId": integration_id}, json=dict(config)
        ).json()
        return saved

    def close(self) -> None:
        self._http.clear()

    # ------------------------------------------------------------------ plumbing

    def _request(
        self, method: str, template: str, params: Mapping[str, str], *, json: Any = None
    ) -> urllib3.BaseHTTPResponse:
        path = template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
        url = self.settings.api_base_url + path
        refreshed = False
        inline_waits = 0
        while True:
            if self._gate is not None:
                self._gate.before_request(method, path)
            token = self.tokens.token()
            response = self._send(method, url, path, token, json)
            status = response.status
            if 200 <= status < 300:
                return response
            correlation_id = response.headers.get("inin-correlation-id")
            if status == 401 and not refreshed:
                # Revoked or expired early: one refresh, one retry (a second 401 means bad credentials).
                self._log_failure(method, path, response, "refreshing the token once")
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if status == 429:
                metrics.add_metric(name=METRIC_GENESYS_RATE_LIMITED, unit=MetricUnit.Count, value=1)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if self._gate is not None:
                    self._gate.rate_limited(retry_after)
                if (
                    retry_after <= self.settings.max_inline_retry_after_seconds
                    and inline_waits < MAX_INLINE_RATE_LIMIT_RETRIES
                ):
                    self._log_failure(method, path, response, f"waiting {retry_after:g}s inline")
                    inline_waits += 1
                    self._sleep(retry_after)
                    continue
                self._log_failure(method, path, response, "left to Step Functions backoff")
                raise GenesysRateLimited(
                    self._message(method, path, status, correlation_id, f"retry after {retry_after:g}s"),
                    retry_after=retry_after,
                    status=status,
                    correlation_id=correlation_id,
                )
            self._log_failure(method, path, response, None)
            raise self._error_for(method, path, response)

    def _send(self, method: str, url: str, path: str, token: str, json: Any) -> urllib3.BaseHTTPResponse:
        started = self._clock()
        body = None if json is None else jsonlib.dumps(json, allow_nan=False).encode()  # as requests' json= did
        headers = {"Authorization": f"Bearer {token}", **(ACCEPT_JSON if body is None else SEND_JSON)}
        try:
            # preload_content (the default) reads the body and hands the connection back to the pool.
            return self._http.request(method, url, body=body, headers=headers, timeout=request_timeout(self._timeout))
        except HTTPError as exc:
            if is_timeout(exc):
                logger.warning(
                    "Genesys request timed out",
                    extra={"method": method, "path": path, "error": failure_name(exc), "timeout": list(self._timeout)},
                )
                raise GenesysUnavailable(
                    f"Genesys {method} {path} timed out ({failure_name(exc)}, timeouts {self._timeout})"
                ) from None
            logger.warning("Genesys request failed", extra={"method": method, "path": path, "error": failure_name(exc)})
            raise GenesysUnavailable(f"Genesys {method} {path} failed: {failure_name(exc)}") from None
        finally:
            metrics.add_metric(
                name=METRIC_GENESYS_LATENCY,
                unit=MetricUnit.Milliseconds,
                value=round((self._clock() - started) * 1000, 1),
            )

    @staticmethod
    def _message(method: str, path: str, status: int, correlation_id: str | None, detail: str | None = None) -> str:
        extra = f", {detail}" if detail else ""
        return f"Genesys {method} {path} -> HTTP {status}{extra} (inin-correlation-id {correlation_id})"

    def _error_for(self, method: str, path: str, response: urllib3.BaseHTTPResponse) -> GenesysError:
        status = response.status
        correlation_id = response.headers.get("inin-correlation-id")
        code = _error_code(response)
        message = self._message(method, path, status, correlation_id, code)
        if status == 401:
            return GenesysBadCredentials(
                message + "; still 401 after a token refresh", status=status, correlation_id=correlation_id
            )
        if status == 403:
            return GenesysForbidden(
                message + "; the OAuth client lacks a permission", status=status, correlation_id=correlation_id
            )
        if status == 408 or status >= 500:
            return GenesysUnavailable(message, status=status, correlation_id=correlation_id)
        return GenesysRejected(message, status=status, correlation_id=correlation_id)

    @staticmethod
    def _log_failure(method: str, path: str, response: urllib3.BaseHTTPResponse, action: str | None) -> None:
        logger.warning(
            "Genesys request failed",
            extra={
                "method": method,
                "path": path,
                "status": response.status,
                "genesys_code": _error_code(response),
                "genesys_correlation_id": response.headers.get("inin-correlation-id"),
                "action": action,
            },
        )


def _error_code(response: urllib3.BaseHTTPResponse) -> str | None:
    # Only the ErrorBody's code: its message may echo request data.
    try:
        body = response.json()
    except ValueError:  # not JSON, or not UTF-8
        return None
    return body.get("code") if isinstance(body, dict) else None
