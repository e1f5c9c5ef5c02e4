"""Opening hours for the silence alarm: EventBridge Scheduler switches its notifications on and off.

CloudWatch alarms have no schedule. Metric math on the hour (``HOUR(m)``) is UTC only, so it drifts by
an hour with daylight saving, and it needs a datapoint to compute the hour from, which is exactly what
is missing when the pipeline is silent. EventBridge Scheduler runs cron expressions in an IANA time zone
(DST included), so three schedules on the configured days do it:

- at ``end``: DisableAlarmActions (the site is closed; the alarm may go to ALARM overnight, silently);
- at ``start``: EnableAlarmActions;
- at ``start + minutes``: SetAlarmState OK. An alarm already in ALARM when its actions are re-enabled
  would never notify (actions fire on transitions); reset to OK, the next evaluation goes back to ALARM,
  and notifies, if the first ``minutes`` of the day brought no event. Earlier than that, the window
  still covers closed hours and would alarm on every opening.

A deploy sets ActionsEnabled back to true; at night that notifies until the next ``end``.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from .config import ActiveHours, EnvironmentConfig

# EventBridge Scheduler universal targets (any AWS API action: arn:aws:scheduler:::aws-sdk:<service>:<action>).
SDK_TARGET = "arn:aws:scheduler:::aws-sdk:cloudwatch:{action}"


def cron(minutes_of_day: int, days: str) -> str:
    """EventBridge Scheduler cron: minutes hours day-of-month month day-of-week year."""
    hour, minute = divmod(minutes_of_day, 60)
    if days == "*":
        return f"cron({minute} {hour} * * ? *)"
    return f"cron({minute} {hour} ? * {days} *)"


class SilenceSchedule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        alarm: cw.Alarm,
        hours: ActiveHours,
        silence_minutes: int,
    ):
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description=f"{config.stack_name} silence alarm opening hours: this alarm's actions and state only",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:EnableAlarmActions", "cloudwatch:DisableAlarmActions", "cloudwatch:SetAlarmState"],
                resources=[alarm.alarm_arn],
            )
        )
        stack = Stack.of(self)
        names = {"AlarmNames": [alarm.alarm_name]}
        calls = {
            "Close": ("disableAlarmActions", hours.end_minutes, names),
            "Open": ("enableAlarmActions", hours.start_minutes, names),
            "Rearm": (
                "setAlarmState",
                hours.start_minutes + silence_minutes,
                {
                    "AlarmName": alarm.alarm_name,
                    "StateValue": "OK",
                    "StateReason": "Opening hours: re-evaluate the silence alarm with notifications on",
                },
            ),
        }
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for name, (action, at, payload) in calls.items():
            self.schedules[name] = scheduler.CfnSchedule(
                self,
                name,
                description=f"{config.stack_name} silence alarm: {action} at {at // 60:02d}:{at % 60:02d} "
                f"{hours.timezone} ({hours.days})",
                schedule_expression=cron(at, hours.days),
                schedule_expression_timezone=hours.timezone,
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=SDK_TARGET.format(action=action),
                    role_arn=self.role.role_arn,
                    input=stack.to_json_string(payload),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=5, maximum_event_age_in_seconds=3600
                    ),
                ),
            )
