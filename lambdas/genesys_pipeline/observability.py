"""Powertools Logger and Metrics, configured once for every handler.

The logger's formatter runs every record through ``redact`` so that no handler
can leak a phone number or a token by accident.

No Tracer: Powertools' Tracer imports aws-xray-sdk (about 110 ms of cold import even
with tracing disabled; the SDK reaches end of support on 2027-02-25). The functions and
the state machine keep X-Ray *active tracing*, configured in infra, which needs no SDK.

The logger is Powertools' own: one process serves one invocation at a time, on Lambda and in the local
runtime alike (each function instance is its own worker process), so the keys an invocation appends
(its Lambda context, the event's dedup key and conversation) are its own.

Every metric carries the dimensions ``service`` and ``environment`` (ENVIRONMENT), so environments
sharing an account keep separate series. Outcome metrics are emitted twice: once in the handler's
metric set (the series the alarms watch) and once per event with ``topic`` added (the short topic
name, ``acd.end``: bounded by the supported topics). EMF gives a metric set one dimension set, so the
per-topic copy is its own ``single_metric`` line.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from .outcomes import METRIC_END_TO_END_LAG, Outcome, OutcomeRecord, emit_outcome, topic_dimension
from .redaction import redact
from .settings import metrics_environment

if TYPE_CHECKING:
    from aws_lambda_powertools.logging.types import LogRecord

SERVICE = "genesys-event-pipeline"
NAMESPACE = "GenesysEventPipeline"


# Lambda context keys Powertools adds to every line that the line does not need: the log group is the
# function's own and function_name stays, so the ARN (about 130 bytes, 3 to 4 lines per event) only costs ingestion.
DROPPED_CONTEXT_KEYS = ("function_arn",)


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        record = redact(log)  # a copy
        for key in DROPPED_CONTEXT_KEYS:
            record.pop(key, None)
        return super().serialize(record)


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())


class _EnvironmentEMF(AmazonCloudWatchEMFProvider):
    """Powertools' ColdStart metric carries only service and function_name: give it the default dimensions too."""

    def add_cold_start_metric(self, context: Any) -> None:
        with single_metric(
            name="ColdStart",
            unit=MetricUnit.Count,
            value=1,
            namespace=self.namespace,
            default_dimensions={"service": str(self.service), **self.default_dimensions},
        ) as metric:
            metric.add_dimension(
                name="function_name", value=self.function_name or getattr(context, "function_name", "") or "unknown"
            )


_shared = Metrics(service=SERVICE, namespace=NAMESPACE)  # Powertools' process-wide metric set
metrics = Metrics(
    provider=_EnvironmentEMF(
        service=SERVICE,
        namespace=NAMESPACE,
        metric_set=_shared.metric_set,
        dimension_set=_shared.dimension_set,
        metadata_set=_shared.metadata_set,
        default_dimensions=_shared.default_dimensions,
    )
)
metrics.set_default_dimensions(environment=metrics_environment())


def record_outcome(
    outcome: Outcome,
    *,
    dedup_key: str | None,
    reason: str | None = None,
    topic: str | None = None,
    event_id: str | None = None,
    message_id: str | None = None,
    execution_name: str | None = None,
    execution_arn: str | None = None,
    failed_state: str | None = None,
    cause: str | None = None,
    **fields: Any,
) -> OutcomeRecord:
    """The one place an event's outcome is counted, logged and recorded (``outcomes.OutcomeRecord``, handed to
    the outcome sink). ``topic``: the event's topic template, if known; ``fields``: more fields for the log line."""
    record = OutcomeRecord(
        outcome,
        dedup_key,
        reason or None,
        topic,
        event_id,
        message_id,
        execution_name,
        execution_arn,
        failed_state,
        cause,
        fields,
    )
    metrics.add_metric(name=outcome.metric_name, unit=MetricUnit.Count, value=1)
    with single_metric(
        name=outcome.metric_name,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE, **metrics.default_dimensions},
    ) as per_topic:
        per_topic.add_dimension(name="topic", value=topic_dimension(topic))
    log = logger.warning if outcome in (Outcome.DEAD_LETTERED, Outcome.FAILED) else logger.info
    log(f"event {outcome.value}", extra=record.log_fields())
    emit_outcome(record)
    return record


def record_end_to_end_lag(event_time: datetime, written_at: datetime) -> None:
    """Genesys event time -> the write-back landing: what supervisors ask about first."""
    lag_ms = max(0.0, (written_at - event_time).total_seconds() * 1000)
    metrics.add_metric(name=METRIC_END_TO_END_LAG, unit=MetricUnit.Milliseconds, value=lag_ms)
