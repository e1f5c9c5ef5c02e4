"""Alarm routing, runbook anchors, the silence alarm and its opening hours, the end-to-end lag alarm."""

from __future__ import annotations

import json
import re

import pytest

from infra import constants as C

from .conftest import ROOT, Synthesized, context_with

TEAM_TOPIC = "arn:aws:sns:eu-central-1:111122223333:contact-center-oncall"


def alarms(s: Synthesized) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in s.resources("AWS::CloudWatch::Alarm").items()}


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped (but - and _), spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def readme_anchors() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_alarm_description_ends_with_its_readme_runbook_anchor(shipped):
    anchors = readme_anchors()
    for lid, alarm in alarms(shipped).items():
        match = re.search(r"Runbook: README\.md#([\w-]+)$", alarm["AlarmDescription"])
        assert match, f"{lid}: {alarm['AlarmDescription']!r} does not end with its runbook anchor"
        assert match.group(1) in anchors, f"{lid}: README has no heading for #{match.group(1)}"


def test_alarms_include_silence_and_end_to_end_lag(shipped):
    names = " ".join(alarms(shipped))
    assert "NoEventsReceived" in names and "EndToEndLag" in names


def test_silence_alarm_fires_on_missing_data_over_the_configured_minutes(shipped):
    [silence] = [a for k, a in alarms(shipped).items() if "NoEventsReceived" in k]
    minutes = shipped.config.silence_alarm.minutes
    assert silence["MetricName"] == "EventsReceived" and silence["Namespace"] == C.METRICS_NAMESPACE
    assert silence["TreatMissingData"] == "breaching"
    assert silence["ComparisonOperator"] == "LessThanThreshold" and silence["Threshold"] == 1
    assert silence["Period"] * silence["EvaluationPeriods"] == minutes * 60
    assert silence["DatapointsToAlarm"] == silence["EvaluationPeriods"]


def test_every_other_alarm_treats_missing_data_as_not_breaching(shipped):
    for lid, alarm in alarms(shipped).items():
        if "NoEventsReceived" not in lid:
            assert alarm["TreatMissingData"] == "notBreaching", lid


def test_lag_alarm_threshold_comes_from_config(shipped):
    [lag] = [a for k, a in alarms(shipped).items() if "EndToEndLag" in k]
    assert lag["MetricName"] == "EndToEndLagMs" and lag["ExtendedStatistic"] == "p99"
    assert lag["Threshold"] == shipped.config.lag_alarm_p99_seconds * 1000


def test_no_silence_alarm_when_unset():
    s = Synthesized("dev", context_with("dev", unset=["silenceAlarm"]))
    assert not [k for k in alarms(s) if "NoEventsReceived" in k]


def test_dev_watches_silence_at_all_hours_without_schedules(dev):
    assert dev.config.silence_alarm.active_hours is None
    dev.template.resource_count_is("AWS::Scheduler::Schedule", 0)


def test_prod_opening_hours_switch_notifications_with_scheduler_in_its_time_zone(prod):
    hours = prod.config.silence_alarm.active_hours
    [(silence_id, _)] = [(k, a) for k, a in alarms(prod).items() if "NoEventsReceived" in k]
    schedules = {k: v["Properties"] for k, v in prod.resources("AWS::Scheduler::Schedule").items()}
    by_action = {s["Target"]["Arn"].rsplit(":", 1)[-1]: s for s in schedules.values()}
    assert set(by_action) == {"disableAlarmActions", "enableAlarmActions", "setAlarmState"}
    assert all(s["ScheduleExpressionTimezone"] == hours.timezone == "Europe/Berlin" for s in schedules.values())
    assert by_action["enableAlarmActions"]["ScheduleExpression"] == "cron(0 7 ? * MON-SAT *)"
    assert by_action["disableAlarmActions"]["ScheduleExpression"] == "cron(0 20 ? * MON-SAT *)"
    # Re-armed once the first `minutes` of the day are inside opening hours (see infra/silence.py).
    assert by_action["setAlarmState"]["ScheduleExpression"] == "cron(30 7 ? * MON-SAT *)"
    for action, s in by_action.items():
        target_input = json.dumps(s["Target"]["Input"])
        assert silence_id in target_input, action  # this alarm's name, not another's
    [role_id] = {s["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules.values()}
    statements = prod.policy_statements(role_id)
    assert statements == [
        {
            "Action": ["cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions", "cloudwatch:SetAlarmState"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [silence_id, "Arn"]},
        }
    ]


def test_alarm_topic_arn_alone_routes_every_alarm_there():
    s = Synthesized("dev", context_with("dev", alarmTopicArn=TEAM_TOPIC))
    s.template.resource_count_is("AWS::SNS::Topic", 0)
    assert all(a["AlarmActions"] == [TEAM_TOPIC] for a in alarms(s).values())
    assert s.json["Outputs"]["AlarmTopicArn"]["Value"] == TEAM_TOPIC


def test_alarm_topic_arn_with_email_routes_every_alarm_to_both():
    s = Synthesized("prod", context_with("prod", alarmTopicArn=TEAM_TOPIC))
    topic_id, _ = s.one("AWS::SNS::Topic")
    for lid, alarm in alarms(s).items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}, TEAM_TOPIC], lid


@pytest.mark.parametrize("days,expected", [("*", "cron(15 8 * * ? *)"), ("MON-FRI", "cron(15 8 ? * MON-FRI *)")])
def test_cron_uses_the_day_of_week_field_only_when_days_are_set(days, expected):
    from infra.silence import cron

    assert cron(8 * 60 + 15, days) == expected
