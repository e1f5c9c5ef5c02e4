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
