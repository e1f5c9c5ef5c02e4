"""Every event ends in exactly one outcome; each has one metric, one log line and one typed record.

``OutcomeRecord`` is what ``observability.record_outcome`` builds: the log line is written from it, and it
goes to the outcome sink (``set_outcome_sink``). The sink is a no-op on AWS; a harness (the local runtime)
sets one to count outcomes from typed fields instead of parsing log lines. A log field may be renamed
without breaking any accounting; a field of this record may not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping

from .topics import SUPPORTED_TOPICS, TOPIC_PREFIX


class Outcome(str, Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FILTERED = "filtered"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"
    SKIPPED = "skipped"  # the write-back plugin returned None: nothing to write for this event

    @property
    def metric_name(self) -> str:
        # CloudWatch metric names used by the dashboard and alarms (infra/).
        return {
            Outcome.APPLIED: "EventsApplied",
            Outcome.DUPLICATE: "EventsDuplicate",
            Outcome.FILTERED: "EventsFiltered",
            Outcome.STALE: "EventsStale",
            Outcome.DEAD_LETTERED: "EventsDeadLettered",
            Outcome.FAILED: "EventsFailed",
            Outcome.SKIPPED: "EventsSkipped",
        }[self]


# Other metric names shared with infra/ (dashboard, alarms).
METRIC_EVENTS_RECEIVED = "EventsReceived"
METRIC_START_EXECUTION_THROTTLED = "StartExecutionThrottled"
METRIC_GENESYS_LATENCY = "GenesysLatencyMs"
METRIC_GENESYS_RATE_LIMITED = "GenesysRateLimited"
METRIC_TOKEN_FETCHES = "GenesysTokenFetches"
METRIC_FAILURE_MARK_FAILED = "FailureMarkFailed"

# The Genesys request budget (genesys_pipeline.budget, docs/request-budget.md). Deferral is not an
# outcome: a deferred event comes back through the queue and ends in one of the outcomes above.
METRIC_EVENTS_DEFERRED = "EventsDeferred"  # events re-sent to the main queue with DelaySeconds
METRIC_BUDGET_DEFERRAL_SECONDS = "BudgetDeferralSeconds"  # the DelaySeconds of each deferral
METRIC_BUDGET_TOKENS_RESERVED = "BudgetTokensReserved"  # requests admission scheduled
METRIC_BUDGET_TOKENS_SPENT = "BudgetTokensSpent"  # requests charged as debt (retries, failure marks)
METRIC_BUDGET_CONFLICTS = "BudgetConflicts"  # conditional writes redone because another container wrote
METRIC_BUDGET_UNAVAILABLE = "BudgetUnavailable"  # admission failed open (the budget table did not answer)
METRIC_GENESYS_REQUESTS = "GenesysRequests"  # requests sent to the Genesys API (the 429 share's denominator)
METRIC_GENESYS_REQUESTS_HELD = "GenesysRequestsHeld"  # requests held back while the environment was paused
METRIC_END_TO_END_LAG = "EndToEndLagMs"  # processor, on applied: Genesys eventTime -> write done

# The `topic` dimension of the per-topic outcome metrics: the topic's short name, bounded by the
# conversation topics the dispatcher parses (topics.SUPPORTED_TOPICS) plus TOPIC_OTHER.
TOPIC_OTHER = "other"  # unparsed (dead-lettered before a topic was known) or not a conversation topic


def topic_dimension(topic: str | None) -> str:
    """'v2.detail.events.conversation.{id}.acd.end' -> 'acd.end'; anything else -> 'other'."""
    if topic is not None and topic in SUPPORTED_TOPICS:
        return topic[len(TOPIC_PREFIX) :]
    return TOPIC_OTHER


@dataclass(frozen=True)
class OutcomeRecord:
    """One event's outcome, as the handler that concluded it knows it.

    Identity: ``dedup_key`` (None when the event could not be parsed), ``event_id`` (the EventBridge id),
    ``message_id`` (the SQS message, dispatcher), ``execution_name`` / ``execution_arn`` (the execution
    that concluded it, processor and error logger). ``fields`` holds the rest of the log line's fields.
    """

    outcome: Outcome
    dedup_key: str | None
    reason: str | None = None
    topic: str | None = None
    event_id: str | None = None
    message_id: str | None = None
    execution_name: str | None = None
    execution_arn: str | None = None
    failed_state: str | None = None  # failed: the state the execution failed at (Process, for a redrive there)
    cause: str | None = None  # failed: the execution's cause
    fields: Mapping[str, Any] = field(default_factory=dict)

    _TYPED = ("topic", "event_id", "message_id", "execution_name", "execution_arn", "failed_state", "cause")

    def log_fields(self) -> dict[str, Any]:
        """The outcome log line's fields (``extra``): outcome, dedup_key, the typed fields set, the rest."""
        out: dict[str, Any] = {"outcome": self.outcome.value, "dedup_key": self.dedup_key}
        out.update({name: getattr(self, name) for name in self._TYPED if getattr(self, name) is not None})
        out.update(self.fields)
        if self.reason:
            out["reason"] = self.reason
        return out

    def as_json(self) -> dict[str, Any]:
        """A JSON-safe dict that ``from_json`` reads back (what crosses a process boundary)."""
        data: dict[str, Any] = {"outcome": self.outcome.value, "dedup_key": self.dedup_key, "reason": self.reason}
        data.update({name: getattr(self, name) for name in self._TYPED})
        data["fields"] = dict(self.fields)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "OutcomeRecord":
        typed = {name: data.get(name) for name in cls._TYPED}
        return cls(
            outcome=Outcome(data["outcome"]),
            dedup_key=data.get("dedup_key"),
            reason=data.get("reason"),
            fields=dict(data.get("fields") or {}),
            **typed,
        )


OutcomeSink = Callable[[OutcomeRecord], None]


def _no_sink(record: OutcomeRecord) -> None:
    return None


_sink: OutcomeSink = _no_sink


def set_outcome_sink(sink: OutcomeSink | None) -> None:
    """Where every OutcomeRecord goes besides the log (None: nowhere, as on AWS). Set by a harness only."""
    global _sink
    _sink = sink or _no_sink


def emit_outcome(record: OutcomeRecord) -> None:
    """Hand the record to the sink. A sink's failure never fails the event: the log line stays the record."""
    try:
        _sink(record)
    except Exception:  # noqa: BLE001 - the sink is a harness's; the handler's outcome is already logged
        pass
