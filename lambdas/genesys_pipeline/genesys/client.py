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

import time
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import quote

import requests
from aws_lambda_powertools.metrics import MetricUnit
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

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
from .oauth import TokenProvider, parse_retry_after
from .secrets import ClientCredentials, load_client_credentials

PARTICIPANT_ATTRIBUTES = "/api/v2/conversations/{conversationId}/participants/{participantId}/attributes"
CONVERSATION_TAGS = "/api/v2/conversations/{conversationId}/tags"
INTEGRATION_CONFIG = "/api/v2/integrations/{integrationId}/config/current"

MAX_INLINE_RATE_LIMIT_RETRIES = 2  # then Step Functions' backoff takes over
POOL_MAXSIZE = 10  # one Lambda invocation at a time, but tests and the error logger may share a client across threads


class RequestGate(Protocol):
    """The environment's shared request budget, seen from the client (genesys_pipeline.budget.BudgetGate)."""

    def before_request(self, method: str, path: str) -> None:
        """Return when the request may go; raise GenesysRateLimited while the environment is paused."""
        ...

    def rate_limited(self, retry_after: float) -> None:
        """A 429: pause the whole environment for ``retry_after`` seconds."""
        ...


def _session() -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=1,
        connect=1,  # connection not established: nothing was sent
        read=False,  # a read error may follow a landed write: surface it
        status=0,
        other=0,
        redirect=False,
        allowed_methods=frozenset({"GET"}),  # moot with read=False and status=0: nothing sent is ever retried
        raise_on_status=False,
        respect_retry_after_header=False,  # 429 handling is ours (error taxonomy)
        backoff_factor=0.1,
    )
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=POOL_MAXSIZE, max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class GenesysClient:
    def __init__(
        self,
        settings: GenesysSettings,
        credentials: ClientCredentials | Callable[[], ClientCredentials] | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        gate: RequestGate | None = None,
    ):
        """``credentials`` defaults to the Secrets Manager secret ``settings.secret_name`` (cached by Powertools)."""
        self.settings = settings
        if credentials is None:
            credentials = lambda: load_client_credentials(settings.secret_name, max_age=settings.secret_max_age_seconds)  # noqa: E731
        elif isinstance(credentials, ClientCredentials):
            credentials = (lambda fixed: lambda: fixed)(credentials)
        self._session = session or _session()
        self._timeout = (settings.connect_timeout_seconds, settings.read_timeout_seconds)
        self._sleep = sleep
        self._clock = clock
        self._gate = gate
        self.tokens = TokenProvider(
            settings.login_base_url,
            credentials,
            session=self._session,
            timeout=self._timeout,
            refresh_margin_seconds=settings.token_refresh_margin_seconds,
            clock=clock,
        )

    # ------------------------------------------------------------------ API

    def patch_participant_attributes(self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]) -> None:
        """Merge ``attributes`` into the participant's data (Genesys answers an empty 2xx)."""
        self._request("PATCH", PARTICIPANT_ATTRIBUTES, {"conversationId": conversation_id, "participantId": participant_id},
                      json={"attributes": dict(attributes)})

    def put_external_tag(self, conversation_id: str, external_tag: str) -> None:
        """Set the conversation's external tag (permission conversation:externalTag:edit)."""
        self._request("PUT", CONVERSATION_TAGS, {"conversationId": conversation_id}, json={"externalTag": external_tag})

    def get_integration_config(self, integration_id: str) -> dict[str, Any]:
        return self._request("GET", INTEGRATION_CONFIG, {"integrationId": integration_id}).json()

    def put_integration_config(self, integration_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """PUT carries the version that was read; a concurrent edit makes it GenesysRejected (409)."""
        return self._request("PUT", INTEGRATION_CONFIG, {"integrationId": integration_id}, json=dict(config)).json()

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, template: str, params: Mapping[str, str], *, json: Any = None) -> requests.Response:
        path = template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
        url = self.settings.api_base_url + path
        refreshed = False
        inline_waits = 0
        while True:
            if self._gate is not None:
                self._gate.before_request(method, path)
            token = self.tokens.token()
            response = self._send(method, url, path, token, json)
            status = response.status_code
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
                if retry_after <= self.settings.max_inline_retry_after_seconds and inline_waits < MAX_INLINE_RATE_LIMIT_RETRIES:
                    self._log_failure(method, path, response, f"waiting {retry_after:g}s inline")
                    inline_waits += 1
                    self._sleep(retry_after)
                    continue
                self._log_failure(method, path, response, "left to Step Functions backoff")
                raise GenesysRateLimited(self._message(method, path, status, correlation_id, f"retry after {retry_after:g}s"),
                                         retry_after=retry_after, status=status, correlation_id=correlation_id)
            self._log_failure(method, path, response, None)
            raise self._error_for(method, path, response)

    def _send(self, method: str, url: str, path: str, token: str, json: Any) -> requests.Response:
        started = self._clock()
        try:
            return self._session.request(method, url, json=json, headers={"Authorization": f"Bearer {token}"},
                                         timeout=self._timeout)
        except requests.exceptions.Timeout as exc:
            logger.warning("Genesys request timed out", extra={"method": method, "path": path, "error": type(exc).__name__,
                                                               "timeout": list(self._timeout)})
            raise GenesysUnavailable(f"Genesys {method} {path} timed out ({type(exc).__name__}, timeouts {self._timeout})") from None
        except requests.exceptions.RequestException as exc:
            logger.warning("Genesys request failed", extra={"method": method, "path": path, "error": type(exc).__name__})
            raise GenesysUnavailable(f"Genesys {method} {path} failed: {type(exc).__name__}") from None
        finally:
            metrics.add_metric(name=METRIC_GENESYS_LATENCY, unit=MetricUnit.Milliseconds,
                               value=round((self._clock() - started) * 1000, 1))

    @staticmethod
    def _message(method: str, path: str, status: int, correlation_id: str | None, detail: str | None = None) -> str:
        extra = f", {detail}" if detail else ""
        return f"Genesys {method} {path} -> HTTP {status}{extra} (inin-correlation-id {correlation_id})"

    def _error_for(self, method: str, path: str, response: requests.Response) -> GenesysError:
        status = response.status_code
        correlation_id = response.headers.get("inin-correlation-id")
        code = _error_code(response)
        message = self._message(method, path, status, correlation_id, code)
        kwargs = {"status": status, "correlation_id": correlation_id}
        if status == 401:
            return GenesysBadCredentials(message + "; still 401 after a token refresh", **kwargs)
        if status == 403:
            return GenesysForbidden(message + "; the OAuth client lacks a permission", **kwargs)
        if status == 408 or status >= 500:
            return GenesysUnavailable(message, **kwargs)
        return GenesysRejected(message, **kwargs)

    @staticmethod
    def _log_failure(method: str, path: str, response: requests.Response, action: str | None) -> None:
        logger.warning(
            "Genesys request failed",
            extra={
                "method": method,
                "path": path,
                "status": response.status_code,
                "genesys_code": _error_code(response),
                "genesys_correlation_id": response.headers.get("inin-correlation-id"),
                "action": action,
            },
        )


def _error_code(response: requests.Response) -> str | None:
    # Only the ErrorBody's code: its message may echo request data.
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None
