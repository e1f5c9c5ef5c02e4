"""Powertools Logger and Metrics, configured once for every handler.

The logger's formatter runs every record through ``redact`` so that no handler
can leak a phone number or a token by accident.

No Tracer: Powertools' Tracer imports aws-xray-sdk (about 110 ms of cold import even
with tracing disabled; the SDK reaches end of support on 2027-02-25). The functions and
the state machine keep X-Ray *active tracing*, configured in infra, which needs no SDK.
"""
from __future__ import annotations

from typing import Any

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


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def record_outcome(outcome: Outcome, *, dedup_key: str | None, reason: str | None = None, **fields: Any) -> None:
    """The one place an event's outcome is counted and logged."""
    metrics.add_metric(name=outcome.metric_name, unit=MetricUnit.Count, value=1)
    extra = {"outcome": outcome.value, "dedup_key": dedup_key, **fields}
    if reason:
        extra["reason"] = reason
    log = logger.warning if outcome in (Outcome.DEAD_LETTERED, Outcome.FAILED) else logger.info
    log(f"event {outcome.value}", extra=extra)
