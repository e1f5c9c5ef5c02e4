"""Dashboard and alarms: events in, outcomes by type and topic, end-to-end lag, queues, executions,
Genesys, Lambdas; a silence alarm for "no events at all".

Custom metrics come from the Lambdas via Powertools (namespace GenesysEventPipeline; names in
lambdas/genesys_pipeline/outcomes.py, copied here so that infra does not import Lambda code). Every one
carries the dimensions service and environment; the per-topic outcome series add topic. A widget or an
alarm must use exactly the dimensions the Lambdas emit, or it watches an empty series:
tests/infrastructure/test_metric_contract.py checks both sides.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import constants as C
from .alarms import PipelineAlarms
from .config import EnvironmentConfig, GenesysRateLimit, SilenceAlarm, topic_suffix
from .silence import SilenceSchedule

# lambdas/genesys_pipeline/outcomes.py: Outcome.metric_name and the shared metric names.
OUTCOME_METRICS = [
    "EventsApplied",
    "EventsDuplicate",
    "EventsFiltered",
    "EventsStale",
    "EventsDeadLettered",
    "EventsFailed",
    "EventsSkipped",
]
METRIC_EVENTS_RECEIVED = "EventsReceived"
METRIC_START_EXECUTION_THROTTLED = "StartExecutionThrottled"
METRIC_GENESYS_LATENCY = "GenesysLatencyMs"
METRIC_GENESYS_RATE_LIMITED = "GenesysRateLimited"
METRIC_TOKEN_FETCHES = "GenesysTokenFetches"
METRIC_FAILURE_MARK_FAILED = "FailureMarkFailed"
# The Genesys request budget (outcomes.py; docs/request-budget.md).
METRIC_EVENTS_DEFERRED = "EventsDeferred"
METRIC_BUDGET_DEFERRAL_SECONDS = "BudgetDeferralSeconds"
METRIC_BUDGET_TOKENS_RESERVED = "BudgetTokensReserved"
METRIC_BUDGET_TOKENS_SPENT = "BudgetTokensSpent"
METRIC_BUDGET_CONFLICTS = "BudgetConflicts"
METRIC_BUDGET_UNAVAILABLE = "BudgetUnavailable"
METRIC_GENESYS_REQUESTS = "GenesysRequests"
METRIC_GENESYS_REQUESTS_HELD = "GenesysRequestsHeld"
BUDGET_METRICS = [
    METRIC_EVENTS_DEFERRED,
    METRIC_BUDGET_DEFERRAL_SECONDS,
    METRIC_BUDGET_TOKENS_RESERVED,
    METRIC_BUDGET_TOKENS_SPENT,
    METRIC_BUDGET_CONFLICTS,
    METRIC_BUDGET_UNAVAILABLE,
    METRIC_GENESYS_REQUESTS,
    METRIC_GENESYS_REQUESTS_HELD,
]
METRIC_END_TO_END_LAG = "EndToEndLagMs"
# The dimensions the Lambdas put on every metric (genesys_pipeline/observability.py), and the extra one on
# the per-topic outcome series (its value: the topic's short name, e.g. acd.end, or TOPIC_OTHER).
DIMENSION_SERVICE = "service"
DIMENSION_ENVIRONMENT = "environment"
DIMENSION_TOPIC = "topic"
TOPIC_OTHER = "other"

PERIOD = Duration.minutes(C.ALARM_PERIOD_MINUTES)


def pipeline_metric(
    config: EnvironmentConfig, name: str, statistic: str = "Sum", *, topic: str | None = None, label: str | None = None
) -> cw.Metric:
    """A custom metric as the Lambdas of ``config``'s environment emit it (with ``topic``: the per-topic series)."""
    dimensions = {DIMENSION_SERVICE: C.SERVICE_NAME, DIMENSION_ENVIRONMENT: config.name}
    if topic is not None:
        dimensions[DIMENSION_TOPIC] = topic
    return cw.Metric(
        namespace=C.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


def topic_dimensions(config: EnvironmentConfig) -> list[str]:
    """The topic values this environment's outcome metrics can carry: its topics' short names, then other."""
    return [topic_suffix(t) for t in config.topics] + [TOPIC_OTHER]


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        main_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        rule_target_dead_letter_queue: sqs.IQueue,
        state_machine: sfn.IStateMachine,
        functions: dict[str, lambda_.IFunction],
    ):
        super().__init__(scope, construct_id)
        self.config = config
        self.routing = PipelineAlarms(self, config=config)
        self.alarm_topic: sns.Topic | None = self.routing.topic
        self.alarms: list[cw.Alarm] = self.routing.alarms
        self.silence_alarm: cw.Alarm | None = None
        self.silence_schedule: SilenceSchedule | None = None

        depth = lambda q: q.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")  # noqa: E731
        self._alarm(
            "DeadLetterQueueDepth",
            depth(dead_letter_queue),
            0,
            "Events dead-lettered by the dispatcher or after maxReceiveCount: see `gcpipe dlq show`",
        )
        self._alarm(
            "RuleTargetDeadLetterQueueDepth",
            depth(rule_target_dead_letter_queue),
            0,
            "EventBridge could not deliver events to the main queue or the error logger",
        )
        # FILL: Step Functions publishes each of these only in a period where it happened, and metric math
        # has no value where an operand has none: unfilled, one failure alone would never sum.
        failed = cw.MathExpression(
            expression="FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
            using_metrics={
                "failed": state_machine.metric_failed(period=PERIOD),
                "timedout": state_machine.metric_timed_out(period=PERIOD),
                "aborted": state_machine.metric_aborted(period=PERIOD),
            },
            label="Executions failed / timed out / aborted",
            period=PERIOD,
        )
        self._alarm("FailedExecutions", failed, 0, "Executions failed at the Process state: fix, then Redrive")
        self._alarm(
            "OldestMessageAge",
            main_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            C.OLDEST_MESSAGE_AGE_ALARM_SECONDS,
            "The main queue is not drained: dispatcher failing or throttled",
        )
        for label, fn in functions.items():
            threshold = C.PROCESSOR_ERRORS_ALARM_THRESHOLD if label == "Processor" else 0
            self._alarm(
                f"{label}Errors", fn.metric_errors(period=PERIOD, statistic="Sum"), threshold, f"{label} Lambda errors"
            )
        lag_p99 = pipeline_metric(config, METRIC_END_TO_END_LAG, "p99")
        self._alarm(
            "EndToEndLag",
            lag_p99,
            config.lag_alarm_p99_seconds * 1000,
            f"p99 of Genesys event time -> write-back above {config.lag_alarm_p99_seconds} s "
            "(lagAlarmP99Seconds): a backlog, Genesys throttling or late deliveries",
        )
        if config.silence_alarm is not None:
            self._silence_alarm(config, config.silence_alarm)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.stack_name}-{C.DASHBOARD_SUFFIX}")
        metric = lambda name, statistic="Sum", **kw: pipeline_metric(config, name, statistic, **kw)  # noqa: E731
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Events in and outcomes",
                width=12,
                left=[metric(METRIC_EVENTS_RECEIVED)] + [metric(m) for m in OUTCOME_METRICS],
            ),
            cw.GraphWidget(
                title="Main queue",
                width=12,
                left=[depth(main_queue)],
                right=[main_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")],
            ),
        )
        topics = topic_dimensions(config)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Applied per topic", width=8, left=[metric("EventsApplied", topic=t, label=t) for t in topics]
            ),
            cw.GraphWidget(
                title="Dead-lettered and failed per topic",
                width=8,
                left=[
                    metric(m, topic=t, label=f"{m} {t}") for m in ("EventsDeadLettered", "EventsFailed") for t in topics
                ],
            ),
            cw.GraphWidget(
                title="End-to-end lag (Genesys event time to write), ms",
                width=8,
                left=[
                    metric(METRIC_END_TO_END_LAG, "p50", label="p50"),
                    metric(METRIC_END_TO_END_LAG, "p99", label="p99"),
                ],
                left_annotations=[
                    cw.HorizontalAnnotation(value=config.lag_alarm_p99_seconds * 1000, label="p99 alarm")
                ],
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Dead-letter queues",
                width=12,
                left=[depth(dead_letter_queue), depth(rule_target_dead_letter_queue)],
            ),
            cw.GraphWidget(
                title="Executions",
                width=12,
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                    state_machine.metric_timed_out(period=PERIOD),
                    state_machine.metric_aborted(period=PERIOD),
                    state_machine.metric_throttled(period=PERIOD),
                    metric(METRIC_START_EXECUTION_THROTTLED),
                ],
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Genesys API",
                width=12,
                left=[metric(METRIC_GENESYS_LATENCY, "p50"), metric(METRIC_GENESYS_LATENCY, "p99")],
                right=[
                    metric(METRIC_GENESYS_RATE_LIMITED),
                    metric(METRIC_TOKEN_FETCHES),
                    metric(METRIC_FAILURE_MARK_FAILED),
                ],
            ),
            cw.GraphWidget(
                title="Lambda errors and throttles",
                width=12,
                left=[fn.metric_errors(period=PERIOD, label=f"{k} errors") for k, fn in functions.items()],
                right=[fn.metric_throttles(period=PERIOD, label=f"{k} throttles") for k, fn in functions.items()],
            ),
        )
        if config.genesys_rate_limit is not None:
            self._request_budget(config.genesys_rate_limit)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda duration (p99)",
                width=24,
                left=[fn.metric_duration(period=PERIOD, statistic="p99", label=k) for k, fn in functions.items()],
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )

    def _request_budget(self, rate_limit: GenesysRateLimit) -> None:
        """Budget use, waits and 429s on the dashboard; an alarm on the share of 429s among Genesys requests."""
        seconds = PERIOD.to_seconds()
        metric = lambda name, statistic="Sum": pipeline_metric(self.config, name, statistic)  # noqa: E731
        requests = metric(METRIC_GENESYS_REQUESTS)
        rate_limited = metric(METRIC_GENESYS_RATE_LIMITED)
        share = cw.MathExpression(
            expression="IF(requests > 0, limited / requests, 0)",
            using_metrics={"requests": requests, "limited": rate_limited},
            label="Share of Genesys requests answered 429",
            period=PERIOD,
        )
        self._alarm(
            "GenesysRateLimitedShare",
            share,
            rate_limit.alarm_share_429,
            f"Over {rate_limit.alarm_share_429:.0%} of Genesys requests were answered 429: another "
            "integration shares the org's limit, or genesysRateLimit is above what Genesys grants",
        )
        per_second = lambda metric, label, id_: cw.MathExpression(  # noqa: E731
            expression=f"{id_} / {seconds}", using_metrics={id_: metric}, label=label, period=PERIOD
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Genesys request budget (requests/s)",
                width=12,
                left=[
                    per_second(requests, "Genesys requests sent", "sent"),
                    per_second(metric(METRIC_BUDGET_TOKENS_RESERVED), "Reserved by admission", "reserved"),
                    per_second(metric(METRIC_BUDGET_TOKENS_SPENT), "Spent as debt (retries, marks)", "debt"),
                ],
                left_annotations=[
                    cw.HorizontalAnnotation(
                        value=rate_limit.requests_per_second, label="genesysRateLimit.requestsPerSecond"
                    )
                ],
                right=[share],
            ),
            cw.GraphWidget(
                title="Budget waits and 429s",
                width=12,
                left=[
                    metric(METRIC_EVENTS_DEFERRED),
                    metric(METRIC_GENESYS_REQUESTS_HELD),
                    rate_limited,
                    metric(METRIC_BUDGET_CONFLICTS),
                    metric(METRIC_BUDGET_UNAVAILABLE),
                ],
                right=[
                    metric(METRIC_BUDGET_DEFERRAL_SECONDS, "Average"),
                    metric(METRIC_BUDGET_DEFERRAL_SECONDS, "Maximum"),
                ],
            ),
        )

    def _silence_alarm(self, config: EnvironmentConfig, silence: SilenceAlarm) -> None:
        periods = silence.minutes // C.ALARM_PERIOD_MINUTES
        hours = silence.active_hours
        when = f"between {hours.start} and {hours.end} {hours.timezone} ({hours.days})" if hours else "at any time"
        # Missing data breaches: a switched-off integration or a wrong topic filter sends nothing at all.
        self.silence_alarm = self._alarm(
            "NoEventsReceived",
            pipeline_metric(config, METRIC_EVENTS_RECEIVED),
            1,
            f"No event reached the dispatcher for {silence.minutes} min, watched {when}: the Genesys "
            "integration, its topic filter or the rule",
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=periods,
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        if hours is not None:
            self.silence_schedule = SilenceSchedule(
                self,
                "SilenceSchedule",
                config=config,
                alarm=self.silence_alarm,
                hours=hours,
                silence_minutes=silence.minutes,
            )

    def _alarm(self, name: str, metric: cw.IMetric, threshold: float, description: str, **options) -> cw.Alarm:
        """Every alarm goes through here: routed to the configured topics, linked to README#alarm-<name>."""
        return self.routing.add(name, metric, threshold, description, **options)
