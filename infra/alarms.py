"""Alarm routing: every alarm notifies the stack's e-mail topic (alarmEmail) and/or an existing topic
(alarmTopicArn: the team's on-call, Chatbot or PagerDuty topic), and links its README runbook.

Each alarm's description ends with ``Runbook: README.md#<anchor>``; the anchor is the README heading
``Alarm: <name>`` (tests/infrastructure/test_alarms.py keeps both in step).
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import EnvironmentConfig
from .function import removal_policy

RUNBOOK_DOCUMENT = "README.md"


def runbook_anchor(alarm_name: str) -> str:
    """The GitHub anchor of the README heading ``Alarm: <alarm_name>``."""
    return f"alarm-{alarm_name.lower()}"


class PipelineAlarms:
    """Creates the topic and the alarms in ``scope`` itself (not a child construct), so that their logical
    ids, hence the deployed topic, its key and its confirmed e-mail subscription, stay what they were."""

    def __init__(self, scope: Construct, *, config: EnvironmentConfig):
        self._scope = scope
        self.alarms: list[cw.Alarm] = []
        self.topic: sns.Topic | None = None  # created here (alarmEmail)
        self.actions: list[cw.IAlarmAction] = []
        if config.alarm_email:
            # CloudWatch can publish only to a topic encrypted with a customer-managed key it may use.
            key = kms.Key(
                scope,
                "AlarmTopicKey",
                enable_key_rotation=True,
                description=f"{config.stack_name} alarm topic encryption",
                removal_policy=removal_policy(config),
            )
            key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
            self.topic = sns.Topic(
                scope, "AlarmTopic", master_key=key, enforce_ssl=True, display_name=f"{config.stack_name} alarms"
            )
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
            self.actions.append(cw_actions.SnsAction(self.topic))
        if config.alarm_topic_arn:
            # The team's topic: its policy (and key, if encrypted) must already let CloudWatch publish.
            existing = sns.Topic.from_topic_arn(scope, "ExistingAlarmTopic", config.alarm_topic_arn)
            self.actions.append(cw_actions.SnsAction(existing))

    def add(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods: int = 1,
        treat_missing_data: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        """One alarm, routed to every configured topic; ``name`` is also its README runbook heading."""
        alarm = cw.Alarm(
            self._scope,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods if evaluation_periods > 1 else None,
            comparison_operator=comparison,
            treat_missing_data=treat_missing_data,
            alarm_description=f"{description}. Runbook: {RUNBOOK_DOCUMENT}#{runbook_anchor(name)}",
        )
        for action in self.actions:
            alarm.add_alarm_action(action)
        self.alarms.append(alarm)
        return alarm
