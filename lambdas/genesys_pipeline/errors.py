"""The error taxonomy.

Lambda reports an unhandled exception's class name as ``errorType``; the state
machine's Retry blocks match on exactly these names (statemachines/), so a
rename here is a change to the ASL too.
"""

from __future__ import annotations

from typing import Any


class InvalidEvent(Exception):
    """The event cannot be processed as sent. Never retried.

    ``reason`` is precise and human-readable, e.g.
    "missing detail.eventBody.conversationId".
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class GenesysError(Exception):
    """Base of every failure talking to Genesys Cloud."""

    def __init__(self, message: str, *, status: int | None = None, correlation_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.correlation_id = correlation_id


class GenesysRateLimited(GenesysError):
    """429. Retried by Step Functions with a long, jittered backoff."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class GenesysUnavailable(GenesysError):
    """5xx, 408, timeouts, connection errors. Retried."""


class GenesysRejected(GenesysError):
    """400/404/409/413/415: the request itself is wrong. Not retried."""


class GenesysForbidden(GenesysError):
    """403: the OAuth client lacks a permission. Not retried."""


class GenesysBadCredentials(GenesysError):
    """401 after one token refresh, or the token endpoint refused the client. Not retried."""


class WriteBackPluginError(Exception):
    """The write-back plugin (WRITE_BACK_PLUGIN) raised, or returned something other than a
    WriteBackRequest or None. Not retried: the execution fails at Process, redrivable once the plugin is fixed."""


class AwsDependencyUnavailable(Exception):
    """An AWS dependency of the processor (the idempotency table, Secrets Manager, an AWS endpoint)
    throttled, answered 5xx or could not be reached. Retried with its own budget (``retries.awsDependency``).

    The message names the dependency, the operation and the error code (never a value or a key);
    ``aws_faults`` decides what is transient, by botocore error code, not by message text.
    """

    def __init__(self, message: str, *, dependency: str, code: str, operation: str | None = None):
        super().__init__(message)
        self.dependency = dependency
        self.code = code
        self.operation = operation


# Names the ASL retries; everything else fails the execution at the Process state.
RETRYABLE_ERROR_NAMES = (GenesysRateLimited.__name__, GenesysUnavailable.__name__, AwsDependencyUnavailable.__name__)
NON_RETRYABLE_ERROR_NAMES = (
    InvalidEvent.__name__,
    GenesysRejected.__name__,
    GenesysForbidden.__name__,
    GenesysBadCredentials.__name__,
    WriteBackPluginError.__name__,
)
