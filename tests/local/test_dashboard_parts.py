"""The local dashboard's pieces: EMF parsing, CloudWatch's metric-array shorthand, metric math, statistics, alarms."""

from __future__ import annotations

import json

import pytest

from gcpipe.local import service_metrics
from gcpipe.local.dashboard import read_emf, statistic, widgets_of
from gcpipe.local.metric_math import MetricMathError, evaluate, evaluate_alarm


def emf(name, values, ts=1_000, **dims):
    return json.dumps(
        {
            "_aws": {
                "Timestamp": ts,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "GenesysEventPipeline",
                        "Dimensions": [sorted(dims)],
                        "Metrics": [{"Name": name, "Unit": "Count"}],
                    }
                ],
            },
            name: values,
            **dims,
        }
    )


def test_emf_lines_become_series_by_dimension_values_and_other_lines_are_ignored():
    lines = [
        '{"level": "INFO", "message": "event applied"}',
        "not json {",
        emf("EventsApplied", [1.0, 1.0], service="s"),
        "prefix " + emf("EventsApplied", 1.0, ts=2_000, service="s"),
        emf("EventsApplied", 1.0, service="t"),
    ]
    series = {(s.name, s.dimensions["service"]): s.points for s in read_emf(lines)}
    assert series == {
        ("EventsApplied", "s"): [(1000.0, 1.0), (1000.0, 1.0), (2000.0, 1.0)],
        ("EventsApplied", "t"): [(1000.0, 1.0)],
    }


def test_widget_lines_match_by_namespace_name_and_dimensions_with_the_dot_shorthand():
    series = read_emf(
        [
            emf("EventsApplied", [1.0, 1.0], service="s", topic="a"),
            emf("EventsApplied", 3.0, service="s", topic="b"),
            emf("GenesysLatencyMs", [10.0, 20.0, 30.0], service="s"),
        ]
    )
    body = {
        "widgets": [
            {
                "type": "metric",
                "properties": {
                    "title": "T",
                    "metrics": [
                        ["GenesysEventPipeline", "EventsApplied", "service", "s", {"stat": "Sum"}],
                        [".", "GenesysLatencyMs", ".", ".", {"stat": "p50"}],
                        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "q"],
                        [{"expression": "a + b", "label": "sum"}],
                    ],
                },
            }
        ]
    }
    [widget] = widgets_of(body, series)
    applied, latency, sqs, expression = widget.lines
    assert statistic([v for _, v in applied.points], applied.stat) == 5.0  # both topics' series
    assert latency.dimensions == {"service": "s"} and statistic([v for _, v in latency.points], "p50") == 20.0
    assert not sqs.has_data and sqs.note == "no data point in this run"
    assert expression.namespace is None and not expression.has_data and expression.note  # its ids have no lines


def test_a_math_line_is_its_expression_over_the_widgets_lines_by_id_per_period():
    series = read_emf([emf("GenesysRequests", [1.0] * 6, ts=1_000), emf("GenesysRequests", [1.0] * 3, ts=301_000)])
    body = {
        "widgets": [
            {
                "type": "metric",
                "properties": {
                    "title": "T",
                    "period": 300,
                    "metrics": [
                        [{"expression": "sent / 300", "label": "per second"}],
                        ["GenesysEventPipeline", "GenesysRequests", {"id": "sent", "stat": "Sum", "visible": False}],
                    ],
                },
            }
        ]
    }
    [widget] = widgets_of(body, series)
    per_second, sent = widget.lines
    assert per_second.points == [(0.0, 6 / 300), (300_000.0, 3 / 300)] and per_second.note is None


def test_metric_math_is_cloudwatchs_a_missing_input_gives_no_value_and_unknown_syntax_is_refused():
    inputs = {"requests": {0: 10.0, 1: 0.0, 2: None}, "limited": {0: 1.0, 1: 0.0, 2: 3.0}}
    assert evaluate("IF(requests > 0, limited / requests, 0)", inputs) == {0: 0.1, 1: 0.0, 2: None}
    assert evaluate("requests + limited * 2", inputs) == {0: 12.0, 1: 0.0, 2: None}
    assert evaluate("FILL(requests, 0) + limited", inputs) == {0: 11.0, 1: 0.0, 2: 3.0}
    with pytest.raises(MetricMathError, match="unknown id 'nope'"):
        evaluate("nope + 1", inputs)
    with pytest.raises(MetricMathError, match="not supported"):
        evaluate("__import__('os')", inputs)


def _points(by_period: dict[int, float]):
    return lambda namespace, name, dims: [(p * 300_000.0 + 1, v) for p, v in by_period.items()]


def _alarm(**overrides):
    props = {
        "Namespace": "N",
        "MetricName": "M",
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    return {**props, **overrides}


def test_an_alarm_is_evaluated_over_the_periods_the_run_covered_with_its_missing_data_rule():
    run = (0.0, 3 * 300_000.0 - 1)  # three periods
    resolve = lambda v: v  # noqa: E731
    assert evaluate_alarm("A", _alarm(), _points({2: 1.0}), resolve, run).state == "ALARM"
    assert evaluate_alarm("A", _alarm(), _points({0: 1.0}), resolve, run).state == "OK"  # only the last period counts
    # 3 of 3, missing data breaching (a silence alarm): empty periods breach
    silence = _alarm(
        ComparisonOperator="LessThanThreshold",
        Threshold=1,
        EvaluationPeriods=3,
        DatapointsToAlarm=3,
        TreatMissingData="breaching",
    )
    assert evaluate_alarm("S", silence, _points({}), resolve, run).state == "ALARM"
    assert evaluate_alarm("S", silence, _points({1: 5.0}), resolve, run).state == "OK"
    # A run shorter than the alarm's window cannot say
    short = evaluate_alarm("S", {**silence, "EvaluationPeriods": 6, "DatapointsToAlarm": 6}, _points({}), resolve, run)
    assert short.state == "INSUFFICIENT_DATA" and "needs 6 of 6" in short.reason
    # A Metrics-array alarm: its returned expression
    share = {
        "Metrics": [
            {"Id": "expr", "Expression": "IF(requests > 0, limited / requests, 0)"},
            {
                "Id": "requests",
                "ReturnData": False,
                "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "R"}, "Period": 300, "Stat": "Sum"},
            },
            {
                "Id": "limited",
                "ReturnData": False,
                "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "L"}, "Period": 300, "Stat": "Sum"},
            },
        ],
        "EvaluationPeriods": 1,
        "Threshold": 0.05,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }

    def points(namespace, name, dims):
        return [(2 * 300_000.0 + 1, 100.0 if name == "R" else 1.0)]

    state = evaluate_alarm("Share", share, points, resolve, run)
    assert state.state == "OK" and state.last_value == 0.01


def test_the_emulated_services_record_their_metrics_as_emf_only_while_a_log_is_open(tmp_path):
    service_metrics.lambda_invoked("f", 12.0, error=False)  # no log open: nothing, nowhere
    with service_metrics.ServiceMetricsLog(tmp_path / "aws-metrics.log"):
        service_metrics.lambda_invoked("f", 12.0, error=True)
        service_metrics.lambda_throttled("f")
        service_metrics.execution_started("arn:sm")
        service_metrics.execution_ended("arn:sm", "FAILED", 250.0)
        service_metrics.execution_ended("arn:sm", "RUNNING", None)  # not an end: no metric
    service_metrics.lambda_throttled("f")
    series = {
        (s.namespace, s.name, tuple(s.dimensions.values())): [v for _, v in s.points]
        for s in read_emf((tmp_path / "aws-metrics.log").read_text().splitlines())
    }
    assert series == {
        ("AWS/Lambda", "Invocations", ("f",)): [1.0],
        ("AWS/Lambda", "Errors", ("f",)): [1.0],
        ("AWS/Lambda", "Duration", ("f",)): [12.0],
        ("AWS/Lambda", "Throttles", ("f",)): [1.0],
        ("AWS/States", "ExecutionsStarted", ("arn:sm",)): [1.0],
        ("AWS/States", "ExecutionsFailed", ("arn:sm",)): [1.0],
        ("AWS/States", "ExecutionTime", ("arn:sm",)): [250.0],
    }


def test_statistics():
    values = [1.0, 2.0, 3.0, 4.0]
    assert [statistic(values, s) for s in ("Sum", "Average", "Maximum", "Minimum", "SampleCount", "p99", "p50")] == [
        10.0,
        2.5,
        4.0,
        1.0,
        4.0,
        4.0,
        2.0,
    ]
    assert statistic([], "Sum") is None
