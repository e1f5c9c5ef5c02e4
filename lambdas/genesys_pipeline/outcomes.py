"""Every event ends in exactly one outcome; each has one metric and one log line."""
from __future__ import annotations

from enum import Enum

from .dedup import TOPIC_PREFIX
from .events import SUPPORTED_TOPICS


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
# conversation topics the dispatcher parses (events.SUPPORTED_TOPICS) plus TOPIC_OTHER.
TOPIC_OTHER = "other"  # unparsed (dead-lettered before a topic was known) or not a conversation topic


def topic_dimension(topic: str | None) -> str:
    """'v2.detail.events.conversation.{id}.acd.end' -> 'acd.end'; anything else -> 'other'."""
    if topic in SUPPORTED_TOPICS:
        return topic[len(TOPIC_PREFIX):]
    return TOPIC_OTHER
