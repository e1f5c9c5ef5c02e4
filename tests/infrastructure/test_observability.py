"""Dashboard and alarms."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match


def alarms(s):
    return {k: v["Properties"] for k, v in s.resources("AWS::CloudWatch::Alarm").items()}


def test_alarms_cover_dlqs_failed_executions_oldest_message_and_lambda_errors(shipped):
    names = " ".join(alarms(shipped))
    for part in (
        "DeadLetterQueueDepth",
        "RuleTargetDeadLetterQueueDepth",
        "FailedExecutions",
        "OldestMessageAge",
        "DispatcherErrors",
        "ProcessorErrors",
        "ErrorLoggerErrors",
    ):
        assert part in names, part


def test_dlq_depth_alarms_on_any_message(shipped):
    dlq_id, _ = shipped.one("AWS::SQS::Queue", "QueuesDeadLetterQueue")
    shipped.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}],
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )


def test_failed_executions_counts_failed_timed_out_and_aborted(shipped):
    [failed] = [a for k, a in alarms(shipped).items() if "FailedExecutions" in k]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}


def test_failed_executions_alarms_on_one_failure_alone(shipped):
    # Step Functions publishes ExecutionsTimedOut/Aborted only in periods where they happen: the sum must not
    # need all three (metric math has no value where an operand has none), hence FILL.
    from gcpipe.local.metric_math import evaluate_alarm

    [failed] = [a for k, a in alarms(shipped).items() if "FailedExecutions" in k]
    one_failure = lambda namespace, name, dims: [(1.0, 1.0)] if name == "ExecutionsFailed" else []  # noqa: E731
    state = evaluate_alarm("FailedExecutions", failed, one_failure, lambda v: v, (0.0, 1.0))
    assert state.state == "ALARM", state.reason


def test_alarm_topic_only_with_an_email_and_encrypted(dev, prod):
    dev.template.resource_count_is("AWS::SNS::Topic", 0)
    assert all("AlarmActions" not in a for a in alarms(dev).values())
    prod.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    prod.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": prod.config.alarm_email}
    )
    topic_id, _ = prod.one("AWS::SNS::Topic")
    assert all(a["AlarmActions"] == [{"Ref": topic_id}] for a in alarms(prod).values())


def test_dashboard_shows_outcomes_queues_executions_genesys_and_lambdas(shipped):
    _, dash = shipped.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for metric in (
        "EventsReceived",
        "EventsApplied",
        "EventsDuplicate",
        "EventsFiltered",
        "EventsStale",
        "EventsDeadLettered",
        "EventsFailed",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "ExecutionsStarted",
        "ExecutionsFailed",
        "ExecutionThrottled",
        "GenesysLatencyMs",
        "GenesysRateLimited",
        "Errors",
        "Throttles",
        "Duration",
        "GenesysEventPipeline",
        "genesys-event-pipeline",
    ):
        assert metric in body, metric
