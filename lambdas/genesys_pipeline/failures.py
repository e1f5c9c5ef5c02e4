"""The error logger's logic: one failure record per failed execution, and a best-effort mark in Genesys.

Input is EventBridge's "Step Functions Execution Status Change" event (source
``aws.states``; ``detail`` has executionArn, stateMachineArn, name, status,
input (a JSON string), error, cause, startDate, stopDate). Only FAILED,
TIMED_OUT and ABORTED are failures; all three can be redriven (RedriveExecution
resumes at the unsuccessful state, with the same input, within 14 days of the
execution's end).

The record is the ``Outcome.FAILED`` log line itself: one line per failed
execution, with the metric, so dashboards and log queries count the same thing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from .budget import RequestBudget, spend_best_effort
from .errors import AwsDependencyUnavailable, GenesysError, GenesysRateLimited, GenesysUnavailable
from .observability import logger, metrics, record_outcome
from .outcomes import METRIC_FAILURE_MARK_FAILED, Outcome
from .redaction import redact
from .settings import ErrorLoggerSettings

FAILED_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
CAUSE_MAX_CHARS = 1000  # a Lambda cause carries a stack trace; the log line needs the message
HISTORY_MAX_PAGES = 5  # the failed state is among the last events; never page a long history
FAILURE_ERROR_ATTRIBUTE = "aws_processing_error"


class StepFunctions(Protocol):
    """The two read calls the error logger makes (a boto3 ``stepfunctions`` client)."""

    def describe_execution(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]: ...


class ParticipantMarker(Protocol):
    def patch_participant_attributes(
        self, conversation_id: str, participant_id: str, attributes: Mapping[str, str]
    ) -> None: ...


@dataclass(frozen=True)
class FailureRecord:
    execution_arn: str
    execution_name: str
    state_machine_arn: str | None
    status: str
    console_url: str
    dedup_key: str | None
    conversation_id: str | None
    participant_id: str | None
    error: str | None
    cause: str | None
    failed_state: str | None
    start_date: str | None
    stop_date: str | None
    topic: str | None = None  # the event's topic template (the outcome metric's topic dimension)

    @property
    def redrive(self) -> dict[str, str]:
        return {
            "console": f"open {self.console_url} and choose Redrive",
            "aws_cli": f"aws stepfunctions redrive-execution --execution-arn {self.execution_arn}",
            "gcpipe": f"gcpipe redrive {self.execution_arn}",
        }

    def log_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        fields["redrive"] = self.redrive
        return fields


def console_url(execution_arn: str) -> str:
    region = region_of(execution_arn)
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else "us-east-1"


def status_change_detail(event: Any) -> dict[str, Any] | None:
    """The event's detail when it is an execution status change; None for anything else."""
    if not isinstance(event, dict) or event.get("source") != "aws.states":
        return None
    detail = event.get("detail")
    if not isinstance(detail, dict) or not detail.get("executionArn"):
        return None
    return detail


def build_failure_record(detail: Mapping[str, Any], sfn: StepFunctions) -> FailureRecord:
    arn = detail["executionArn"]
    details = dict(detail)
    if details.get("input") is None or (details.get("error") is None and details.get("cause") is None):
        # EventBridge omits input over 248 KB (inputDetails.included=false); error/cause may be null for TIMED_OUT.
        try:
            described = sfn.describe_execution(executionArn=arn)
            for key in ("input", "error", "cause", "stateMachineArn", "name", "startDate", "stopDate"):
                if details.get(key) is None and described.get(key) is not None:
                    details[key] = described[key]
        except Exception as exc:  # noqa: BLE001 - the record is still worth emitting with what the event has
            logger.warning(
                "describe_execution failed; logging the failure from the event alone",
                extra={"execution_arn": arn, "error": type(exc).__name__},
            )
    execution_input = _json_object(details.get("input"))
    nested = execution_input.get("event")
    event: dict[str, Any] = nested if isinstance(nested, dict) else execution_input
    name = str(details.get("name") or arn.rsplit(":", 1)[-1])
    return FailureRecord(
        execution_arn=arn,
        execution_name=name,
        state_machine_arn=details.get("stateMachineArn"),
        status=str(details.get("status") or "FAILED"),
        console_url=console_url(arn),
        dedup_key=event.get("dedupKey") or name,  # execution name = dedup key
        conversation_id=event.get("conversationId"),
        participant_id=event.get("participantId"),
        error=details.get("error"),
        cause=summarize_cause(details.get("cause")),
        failed_state=failed_state(sfn, arn),
        start_date=_iso(details.get("startDate")),
        stop_date=_iso(details.get("stopDate")),
        topic=event.get("topic") if isinstance(event.get("topic"), str) else None,
    )


def summarize_cause(cause: Any) -> str | None:
    """The Lambda error's message (not its stack trace), redacted and truncated."""
    if cause in (None, ""):
        return None
    text = str(cause)
    parsed = _json_object(text)
    if parsed.get("errorMessage"):
        text = f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    text = str(redact(text))
    return text if len(text) <= CAUSE_MAX_CHARS else text[: CAUSE_MAX_CHARS - 1] + "…"


def failed_state(sfn: StepFunctions, execution_arn: str) -> str | None:
    """The state the execution was in when it stopped: the last state entered (newest first in reverse order)."""
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "reverseOrder": True, "maxResults": 100}
    best: tuple[int, str] | None = None
    try:
        for _ in range(HISTORY_MAX_PAGES):
            page = sfn.get_execution_history(**kwargs)
            for event in page.get("events", []):
                entered = event.get("stateEnteredEventDetails")
                if entered and entered.get("name") and (best is None or event.get("id", 0) > best[0]):
                    best = (event.get("id", 0), entered["name"])
            if best is not None or not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except Exception as exc:  # noqa: BLE001 - the failed state is a convenience, not worth losing the record
        logger.warning(
            "get_execution_history failed", extra={"execution_arn": execution_arn, "error": type(exc).__name__}
        )
    return best[1] if best else None


def log_failure(record: FailureRecord) -> None:
    record_outcome(
        Outcome.FAILED,
        dedup_key=record.dedup_key,
        reason=record.error or record.status,
        **{k: v for k, v in record.log_fields().items() if k != "dedup_key"},
    )


def mark_conversation_failed(
    genesys: ParticipantMarker | None,
    record: FailureRecord,
    settings: ErrorLoggerSettings,
    budget: RequestBudget | None = None,
) -> bool:
    """Best effort: set the participant's failure attributes in Genesys. Never raises; True when written.

    The mark spends one request from the budget without waiting on it (a failure is rare; its debt
    slows admission); while the environment is paused after a 429 the client does not send it.
    """
    if not settings.mark_failed_conversations or genesys is None:
        return False
    if not record.conversation_id or not record.participant_id:
        logger.info(
            "failure not marked in Genesys: the execution input has no conversation/participant",
            extra={"execution_arn": record.execution_arn},
        )
        return False
    attributes = {
        settings.failure_status_attribute: "failed",
        FAILURE_ERROR_ATTRIBUTE: record.error or record.status,
    }
    if budget is not None:
        spend_best_effort(budget, 1)
    try:
        genesys.patch_participant_attributes(record.conversation_id, record.participant_id, attributes)
    except Exception as exc:  # noqa: BLE001 - a Genesys or AWS outage, or bad credentials, must not fail the error logger
        metrics.add_metric(name=METRIC_FAILURE_MARK_FAILED, unit=MetricUnit.Count, value=1)
        logger.warning(
            "failure not marked in Genesys",
            extra={
                "execution_arn": record.execution_arn,
                "conversation_id": record.conversation_id,
                "error": type(exc).__name__,
                # Our messages hold no customer data (an AwsDependencyUnavailable names service, call and code).
                "detail": str(exc) if isinstance(exc, (GenesysError, AwsDependencyUnavailable)) else None,
                "transient": isinstance(exc, (GenesysRateLimited, GenesysUnavailable, AwsDependencyUnavailable)),
                "genesys_correlation_id": getattr(exc, "correlation_id", None),
            },
        )
        return False
    logger.info(
        "failure marked in Genesys", extra={"execution_arn": record.execution_arn, "attributes": sorted(attributes)}
    )
    return True


def handle_status_change(
    event: Any,
    *,
    sfn: StepFunctions,
    genesys: ParticipantMarker | None,
    settings: ErrorLoggerSettings,
    budget: RequestBudget | None = None,
) -> dict[str, Any]:
    detail = status_change_detail(event)
    if detail is None or detail.get("status") not in FAILED_STATUSES:
        logger.info("not a failed execution; ignored", extra={"status": (detail or {}).get("status")})
        return {"logged": False}
    record = build_failure_record(detail, sfn)
    log_failure(record)
    marked = mark_conversation_failed(genesys, record, settings, budget)
    return {"logged": True, "executionArn": record.execution_arn, "marked": marked}


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, (int, float)):  # the status-change event gives epoch milliseconds
        from datetime import datetime, timezone

        return datetime.fromtimestamp(value / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    return str(value)
