"""OAuth client credentials with one cached token per warm container.

Genesys (team reference): ``POST https://login.<domain>/oauth/token`` with
``Authorization: Basic base64(clientId:clientSecret)`` and the form body
``grant_type=client_credentials``; the answer is ``{"access_token",
"token_type": "bearer", "expires_in"}``. The default lifetime is 86400 s,
configurable per client from 5 min to 48 h. A bad client gets
``400 {"error": "unauthorized_client"}`` or a 401. ``token.rate.per.minute``
and ``client.credentials.token.rate.per.minute`` are 300: fetching a token per
invocation would hit them at modest traffic, hence the module-scope cache.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode

import urllib3
from aws_lambda_powertools.metrics import MetricUnit
from urllib3.exceptions import HTTPError
from urllib3.util import make_headers

from ..errors import GenesysBadCredentials, GenesysRateLimited, GenesysRejected, GenesysUnavailable
from ..observability import logger, metrics
from ..outcomes import METRIC_TOKEN_FETCHES
from .secrets import ClientCredentials
from .transport import failure_name, request_timeout

TOKEN_PATH = "/oauth/token"
# A margin of 300 s on a 5-minute token would refresh on every call; never spend more than 10% of the lifetime.
MAX_MARGIN_FRACTION = 0.1
DEFAULT_RETRY_AFTER_SECONDS = 3.0  # the official SDKs' default when a 429 has no Retry-After


@dataclass(frozen=True)
class _CachedToken:
    access_token: str = ""
    refresh_at: float = 0.0  # clock time after which the token is fetched again


TokenKey = tuple[str, str, str]  # (token URL, client id, secret digest)


class TokenCache:
    """The tokens of one container: one entry per (login URL, client id, secret digest), shared by every
    client in it, with a lock per entry so that fetches are single-flight."""

    def __init__(self) -> None:
        self.tokens: dict[TokenKey, _CachedToken] = {}
        self._locks: dict[TokenKey, threading.Lock] = {}
        self._registry_lock = threading.Lock()

    def lock_for(self, key: TokenKey) -> threading.Lock:
        with self._registry_lock:
            return self._locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        with self._registry_lock:
            self.tokens.clear()
            self._locks.clear()


# Module scope: the container's cache, so a warm Lambda fetches a token once per lifetime. A process
# that plays several containers (bench.tokens) gives each client its own TokenCache.
CONTAINER_CACHE = TokenCache()


def clear_token_cache() -> None:
    """Forget every cached token (tests; or after a secret rotation outside the normal flow)."""
    CONTAINER_CACHE.clear()


def refresh_margin(lifetime_seconds: float, configured_margin_seconds: float) -> float:
    return max(0.0, min(configured_margin_seconds, lifetime_seconds * MAX_MARGIN_FRACTION))


class TokenProvider:
    """Gives a valid bearer token; fetches are single-flight per client."""

    def __init__(
        self,
        login_base_url: str,
        credentials: Callable[[], ClientCredentials],
        *,
        http: urllib3.PoolManager,
        timeout: tuple[float, float],
        refresh_margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        cache: TokenCache = CONTAINER_CACHE,
    ):
        self._url = login_base_url.rstrip("/") + TOKEN_PATH
        self._cache = cache
        self._credentials = credentials
        self._http = http
        self._timeout = timeout
        self._margin = refresh_margin_seconds
        self._clock = clock

    def token(self) -> str:
        credentials = self._credentials()
        key = self._key(credentials)
        tokens = self._cache.tokens
        cached = tokens.get(key)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.access_token
        with self._cache.lock_for(key):
            # Another thread may have fetched while this one waited for the lock.
            cached = tokens.get(key)
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.access_token
            fresh = self._fetch(credentials)
            tokens[key] = fresh
            return fresh.access_token

    def invalidate(self, access_token: str) -> None:
        """Drop ``access_token`` after a 401, unless another thread already replaced it."""
        key = self._key(self._credentials())
        with self._cache.lock_for(key):
            cached = self._cache.tokens.get(key)
            if cached is not None and cached.access_token == access_token:
                del self._cache.tokens[key]

    def _key(self, credentials: ClientCredentials) -> TokenKey:
        # A digest, not the secret, so a rotated secret gets its own entry and the key is safe to hold.
        digest = hashlib.sha256(credentials.client_secret.encode()).hexdigest()
        return (self._url, credentials.client_id, digest)

    def _fetch(self, credentials: ClientCredentials) -> _CachedToken:
        metrics.add_metric(name=METRIC_TOKEN_FETCHES, unit=MetricUnit.Count, value=1)
        started = self._clock()
        headers = {
            # HTTP Basic, as requests' auth=(id, secret) sends it (latin-1, base64)
            **make_headers(basic_auth=f"{credentials.client_id}:{credentials.client_secret}"),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            response = self._http.request(
                "POST",
                self._url,
                body=urlencode({"grant_type": "client_credentials"}),
                headers=headers,
                timeout=request_timeout(self._timeout),
            )
        except HTTPError as exc:
            raise GenesysUnavailable(f"Genesys token endpoint unreachable: {failure_name(exc)}") from None
        correlation_id = response.headers.get("inin-correlation-id")
        status = response.status
        where = f"POST {TOKEN_PATH} -> HTTP {status} (inin-correlation-id {correlation_id})"
        if status == 200:
            try:
                body = response.json()
                access_token, lifetime = str(body["access_token"]), float(body["expires_in"])
            except (ValueError, KeyError, TypeError):
                raise GenesysUnavailable(
                    f"Genesys token endpoint answered without access_token/expires_in: {where}",
                    status=status,
                    correlation_id=correlation_id,
                ) from None
            logger.info(
                "Genesys token fetched", extra={"expires_in": lifetime, "genesys_correlation_id": correlation_id}
            )
            return _CachedToken(access_token, started + lifetime - refresh_margin(lifetime, self._margin))
        error = _oauth_error(response)
        logger.warning(
            "Genesys token request failed",
            extra={"status": status, "oauth_error": error, "genesys_correlation_id": correlation_id},
        )
        if status in (400, 401, 403):
            raise GenesysBadCredentials(
                f"Genesys refused the OAuth client {credentials.client_id} ({error or 'no error code'}): {where}",
                status=status,
                correlation_id=correlation_id,
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise GenesysRateLimited(
                f"Genesys token endpoint rate limited: {where}",
                retry_after=retry_after,
                status=status,
                correlation_id=correlation_id,
            )
        if status == 408 or status >= 500:
            raise GenesysUnavailable(
                f"Genesys token endpoint unavailable: {where}", status=status, correlation_id=correlation_id
            )
        raise GenesysRejected(
            f"Genesys token endpoint rejected the request: {where}", status=status, correlation_id=correlation_id
        )


def _oauth_error(response: urllib3.BaseHTTPResponse) -> str | None:
    try:
        body = response.json()
    except ValueError:  # not JSON, or not UTF-8
        return None
    if isinstance(body, dict):
        return body.get("error") or body.get("code")
    return None


def parse_retry_after(value: str | None) -> float:
    """Retry-After in seconds (Genesys sends an integer); absent or unreadable means the SDKs' 3 s."""
    if value is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    try:
        seconds = float(value.strip())
    except ValueError:
        from email.utils import parsedate_to_datetime  # the HTTP-date form, which RFC 9110 also allows

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER_SECONDS
    return max(0.0, seconds)
