"""Dashboard and alarms: events in, outcomes by type, queues, executions, Genesys, Lambdas.

Custom metrics come from the Lambdas via Powertools (namespace GenesysEventPipeline, dimension
service=genesys-event-pipeline; names in lambdas/genesys_pipeline/outcomes.py, copied here so that
infra does not import Lambda code).
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from . import constants as C
from .config import EnvironmentConfig, GenesysRateLimit
from .function import removal_policy

# lambdas/genesys_pipeline/outcomes.py: Outcome.metric_name and the shared metric names.
OUTCOME_METRICS = ["EventsApplied", "EventsDuplicate", "EventsFiltered", "EventsStale", "EventsDeadLettered",
                   "EventsFailed", "EventsSkipped"]
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
BUDGET_METRICS = [METRIC_EVENTS_DEFERRED, METRIC_BUDGET_DEFERRAL_SECONDS, METRIC_BUDGET_TOKENS_RESERVED,
                  METRIC_BUDGET_TOKENS_SPENT, METRIC_BUDGET_CONFLICTS, METRIC_BUDGET_UNAVAILABLE,
                  METRIC_GENESYS_REQUESTS, METRIC_GENESYS_REQUESTS_HELD]

PERIOD = Duration.minutes(C.ALARM_PERIOD_MINUTES)


def pipeline_metric(name: str, statistic: str = "Sum") -> cw.Metric:
    return cw.Metric(namespace=C.METRICS_NAMESPACE, metric_name=name,
                     dimensions_map={"service": C.SERVICE_NAME}, statistic=statistic, period=PERIOD)


class Observability(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 main_queue: sqs.IQueue, dead_letter_queue: sqs.IQueue, rule_target_dead_letter_queue: sqs.IQueue,
                 state_machine: sfn.IStateMachine, functions: dict[str, lambda_.IFunction]):
        super().__init__(scope, construct_id)
        self.alarm_topic: sns.Topic | None = None
        if config.alarm_email:
            # CloudWatch can publish only to a topic encrypted with a customer-managed key it may use.
            key = kms.Key(self, "AlarmTopicKey", enable_key_rotation=True,
                          description=f"{config.stack_name} alarm topic encryption",
                          removal_policy=removal_policy(config))
            key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
            self.alarm_topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True,
                                         display_name=f"{config.stack_name} alarms")
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.alarms: list[cw.Alarm] = []
        depth = lambda q: q.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")  # noqa: E731
        self._alarm("DeadLetterQueueDepth", depth(dead_letter_queue), 0,
                    "Events dead-lettered by the dispatcher or after maxReceiveCount: see `gcpipe dlq show`")
        self._alarm("RuleTargetDeadLetterQueueDepth", depth(rule_target_dead_letter_queue), 0,
                    "EventBridge could not deliver events to the main queue or the error logger")
        failed = cw.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={"failed": state_machine.metric_failed(period=PERIOD),
                           "timedout": state_machine.metric_timed_out(period=PERIOD),
                           "aborted": state_machine.metric_aborted(period=PERIOD)},
            label="Executions failed / timed out / aborted", period=PERIOD)
        self._alarm("FailedExecutions", failed, 0, "Executions failed at the Process state: fix, then Redrive")
        self._alarm("OldestMessageAge",
                    main_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                    C.OLDEST_MESSAGE_AGE_ALARM_SECONDS, "The main queue is not drained: dispatcher failing or throttled")
        for label, fn in functions.items():
            threshold = C.PROCESSOR_ERRORS_ALARM_THRESHOLD if label == "Processor" else 0
            self._alarm(f"{label}Errors", fn.metric_errors(period=PERIOD, statistic="Sum"), threshold,
                        f"{label} Lambda errors")

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{config.stack_name}-{C.DASHBOARD_SUFFIX}")
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Events in and outcomes", width=12,
                           left=[pipeline_metric(METRIC_EVENTS_RECEIVED)] + [pipeline_metric(m) for m in OUTCOME_METRICS]),
            cw.GraphWidget(title="Main queue", width=12,
                           left=[depth(main_queue)],
                           right=[main_queue.metric_approximate_age_of_oldest_message(period=PERIOD,
                                                                                      statistic="Maximum")]),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Dead-letter queues", width=12,
                           left=[depth(dead_letter_queue), depth(rule_target_dead_letter_queue)]),
            cw.GraphWidget(title="Executions", width=12,
                           left=[state_machine.metric_started(period=PERIOD), state_machine.metric_succeeded(period=PERIOD),
                                 state_machine.metric_failed(period=PERIOD), state_machine.metric_timed_out(period=PERIOD),
                                 state_machine.metric_aborted(period=PERIOD), state_machine.metric_throttled(period=PERIOD),
                                 pipeline_metric(METRIC_START_EXECUTION_THROTTLED)]),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Genesys API", width=12,
                           left=[pipeline_metric(METRIC_GENESYS_LATENCY, "p50"),
                                 pipeline_metric(METRIC_GENESYS_LATENCY, "p99")],
                           right=[pipeline_metric(METRIC_GENESYS_RATE_LIMITED), pipeline_metric(METRIC_TOKEN_FETCHES),
                                  pipeline_metric(METRIC_FAILURE_MARK_FAILED)]),
            cw.GraphWidget(title="Lambda errors and throttles", width=12,
                           left=[fn.metric_errors(period=PERIOD, label=f"{k} errors") for k, fn in functions.items()],
                           right=[fn.metric_throttles(period=PERIOD, label=f"{k} throttles")
                                  for k, fn in functions.items()]),
        )
        if config.genesys_rate_limit is not None:
            self._request_budget(config.genesys_rate_limit)
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Lambda duration (p99)", width=24,
                           left=[fn.metric_duration(period=PERIOD, statistic="p99", label=k)
                                 for k, fn in functions.items()]),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24),
        )

    def _request_budget(self, rate_limit: GenesysRateLimit) -> None:
        """Budget use, waits and 429s on the dashboard; an alarm on the share of 429s among Genesys requests."""
        seconds = PERIOD.to_seconds()
        requests = pipeline_metric(METRIC_GENESYS_REQUESTS)
        rate_limited = pipeline_metric(METRIC_GENESYS_RATE_LIMITED)
        share = cw.MathExpression(
            expression="IF(requests > 0, limited / requests, 0)",
            using_metrics={"requests": requests, "limited": rate_limited},
            label="Share of Genesys requests answered 429", period=PERIOD)
        self._alarm("GenesysRateLimitedShare", share, rate_limit.alarm_share_429,
                    f"Over {rate_limit.alarm_share_429:.0%} of Genesys requests were answered 429: another "
                    "integration shares the org's limit, or genesysRateLimit is above what Genesys grants")
        per_second = lambda metric, label, id_: cw.MathExpression(  # noqa: E731
            expression=f"{id_} / {seconds}", using_metrics={id_: metric}, label=label, period=PERIOD)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Genesys request budget (requests/s)", width=12,
                left=[per_second(requests, "Genesys requests sent", "sent"),
                      per_second(pipeline_metric(METRIC_BUDGET_TOKENS_RESERVED), "Reserved by admission", "reserved"),
                      per_second(pipeline_metric(METRIC_BUDGET_TOKENS_SPENT), "Spent as debt (retries, marks)",
                                 "debt")],
                left_annotations=[cw.HorizontalAnnotation(value=rate_limit.requests_per_second,
                                                          label="genesysRateLimit.requestsPerSecond")],
                right=[share]),
            cw.GraphWidget(
                title="Budget waits and 429s", width=12,
                left=[pipeline_metric(METRIC_EVENTS_DEFERRED), pipeline_metric(METRIC_GENESYS_REQUESTS_HELD),
                      rate_limited, pipeline_metric(METRIC_BUDGET_CONFLICTS),
                      pipeline_metric(METRIC_BUDGET_UNAVAILABLE)],
                right=[pipeline_metric(METRIC_BUDGET_DEFERRAL_SECONDS, "Average"),
                       pipeline_metric(METRIC_BUDGET_DEFERRAL_SECONDS, "Maximum")]),
        )

    def _alarm(self, name: str, metric: cw.IMetric, threshold: float, description: str) -> cw.Alarm:
        alarm = cw.Alarm(
            self, name, metric=metric, threshold=threshold, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING, alarm_description=description,
        )
        if self.alarm_topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        self.alarms.append(alarm)
        return alarm
