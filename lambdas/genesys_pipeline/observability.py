"""Powertools Logger and Metrics, configured once for every handler.

The logger's formatter runs every record through ``redact`` so that no handler
can leak a phone number or a token by accident.

No Tracer: Powertools' Tracer imports aws-xray-sdk (about 110 ms of cold import even
with tracing disabled; the SDK reaches end of support on 2027-02-25). The functions and
the state machine keep X-Ray *active tracing*, configured in infra, which needs no SDK.

The keys an invocation appends (its Lambda context, the event's dedup key and
conversation) are kept per thread (Powertools' ``thread_safe_append_keys``), not
in the formatter that every thread shares. On Lambda one process serves one
invocation at a time, so it makes no difference there; the local runtime runs
many invocations in one process at once, one thread each, and shared keys
there gave a line another invocation's request id and dedup key.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from .outcomes import Outcome
from .redaction import redact

SERVICE = "genesys-event-pipeline"
NAMESPACE = "GenesysEventPipeline"


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:
        return super().serialize(redact(log))


class InvocationLogger(Logger):
    """A Powertools Logger whose appended keys belong to the thread that appended them."""

    def append_keys(self, **additional_keys: object) -> None:
        self.thread_safe_append_keys(**additional_keys)

    def remove_keys(self, keys: Iterable[str]) -> None:
        self.thread_safe_remove_keys(keys)

    def get_current_keys(self) -> dict[str, Any]:
        return {**super().get_current_keys(), **self.thread_safe_get_current_keys()}

    def inject_lambda_context(self, lambda_handler: Callable[..., Any] | None = None, *,  # type: ignore[override]
                              clear_state: bool | None = False, **options: Any) -> Any:
        """Powertools' decorator; its context keys go through ``append_keys`` (per thread), and
        ``clear_state`` clears this thread's keys before and after the invocation."""
        if lambda_handler is None:
            return functools.partial(self.inject_lambda_context, clear_state=clear_state, **options)
        decorated = super().inject_lambda_context(lambda_handler, clear_state=False, **options)

        @functools.wraps(lambda_handler)
        def handler(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            if clear_state:
                self.thread_safe_clear_keys()
            try:
                return decorated(event, context, *args, **kwargs)
            finally:
                if clear_state:
                    self.thread_safe_clear_keys()  # a reused thread starts its next invocation clean

        return handler


logger = InvocationLogger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def record_outcome(outcome: Outcome, *, dedup_key: str | None, reason: str | None = None, **fields: Any) -> None:
    """The one place an event's outcome is counted and logged."""
    metrics.add_metric(name=outcome.metric_name, unit=MetricUnit.Count, value=1)
    extra = {"outcome": outcome.value, "dedup_key": dedup_key, **fields}
    if reason:
        extra["reason"] = reason
    log = logger.warning if outcome in (Outcome.DEAD_LETTERED, Outcome.FAILED) else logger.info
    log(f"event {outcome.value}", extra=extra)
