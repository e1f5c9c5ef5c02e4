"""Which AWS SDK errors are transient: throttling, a 5xx, an endpoint out of reach.

Decided by the botocore error code and HTTP status, never by message text. Libraries wrap
the SDK's error (Powertools idempotency raises ``IdempotencyPersistenceLayerError(...) from
exc``; Powertools parameters raises ``GetParameterError(str(exc))`` inside its ``except``,
so the original is only its ``__context__``), so the error is looked for along the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import AwsDependencyUnavailable

# Error codes AWS services use for throttling (JSON and query protocols; DynamoDB adds its
# throughput and request-rate codes). botocore's own retry tables hold the same names.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
    }
)
# Server-side failures; any HTTP status >= 500 counts too. Secrets Manager says InternalServiceError.
UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalServiceError",
        "InternalFailure",
        "InternalError",
    }
)
_CHAIN_LIMIT = 8  # wrappers are one or two deep; a bound guards against odd cycles


@dataclass(frozen=True)
class AwsFault:
    """The botocore error behind an exception, classified."""

    code: str  # the service's error code, or the botocore exception's class name (connection errors)
    operation: str | None
    status: int | None
    transient: bool


def aws_fault(exc: BaseException) -> AwsFault | None:
    """The first botocore error on ``exc``'s chain (itself, ``__cause__``, ``__context__``), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        if isinstance(current, ClientError):
            error = current.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = (current.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            transient = (
                code in THROTTLING_CODES
                or code in UNAVAILABLE_CODES
                or (isinstance(status, int) and (status >= 500 or status == 429))
            )
            return AwsFault(code or str(status), current.operation_name, status, transient)
        if isinstance(current, (BotoConnectionError, HTTPClientError)):
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, ...
            return AwsFault(type(current).__name__, None, None, True)
        current = current.__cause__ or current.__context__
    return None


def dependency_unavailable(exc: BaseException, dependency: str) -> AwsDependencyUnavailable | None:
    """The retryable error for ``exc`` when a transient AWS fault is behind it; None otherwise
    (a permanent fault, e.g. AccessDenied or a missing table, keeps failing at once)."""
    fault = aws_fault(exc)
    if fault is None or not fault.transient:
        return None
    what = f"{fault.operation} " if fault.operation else ""
    status = f" (HTTP {fault.status})" if fault.status else ""
    return AwsDependencyUnavailable(
        f"{dependency}: {what}{fault.code}{status}", dependency=dependency, code=fault.code, operation=fault.operation
    )
