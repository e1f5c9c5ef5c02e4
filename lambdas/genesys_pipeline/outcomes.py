"""Every event ends in exactly one outcome; each has one metric and one log line."""
from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    FILTERED = "filtered"
    STALE = "stale"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"

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
        }[self]


# Other metric names shared with infra/ (dashboard, alarms).
METRIC_EVENTS_RECEIVED = "EventsReceived"
METRIC_START_EXECUTION_THROTTLED = "StartExecutionThrottled"
METRIC_GENESYS_LATENCY = "GenesysLatencyMs"
METRIC_GENESYS_RATE_LIMITED = "GenesysRateLimited"
METRIC_TOKEN_FETCHES = "GenesysTokenFetches"
METRIC_FAILURE_MARK_FAILED = "FailureMarkFailed"
