"""The local dashboard's pieces: EMF parsing, CloudWatch's metric-array shorthand, statistics."""
from __future__ import annotations

import json

from gcpipe.local.dashboard import read_emf, statistic, widgets_of


def emf(name, values, ts=1_000, **dims):
    return json.dumps({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [
        {"Namespace": "GenesysEventPipeline", "Dimensions": [sorted(dims)], "Metrics": [{"Name": name, "Unit": "Count"}]}]},
        name: values, **dims})


def test_emf_lines_become_series_by_dimension_values_and_other_lines_are_ignored():
    lines = ['{"level": "INFO", "message": "event applied"}', "not json {", emf("EventsApplied", [1.0, 1.0], service="s"),
             "prefix " + emf("EventsApplied", 1.0, ts=2_000, service="s"), emf("EventsApplied", 1.0, service="t")]
    series = {(s.name, s.dimensions["service"]): s.points for s in read_emf(lines)}
    assert series == {("EventsApplied", "s"): [(1000.0, 1.0), (1000.0, 1.0), (2000.0, 1.0)],
                      ("EventsApplied", "t"): [(1000.0, 1.0)]}


def test_widget_lines_match_by_namespace_name_and_dimensions_with_the_dot_shorthand():
    series = read_emf([emf("EventsApplied", [1.0, 1.0], service="s", topic="a"), emf("EventsApplied", 3.0, service="s", topic="b"),
                       emf("GenesysLatencyMs", [10.0, 20.0, 30.0], service="s")])
    body = {"widgets": [{"type": "metric", "properties": {"title": "T", "metrics": [
        ["GenesysEventPipeline", "EventsApplied", "service", "s", {"stat": "Sum"}],
        [".", "GenesysLatencyMs", ".", ".", {"stat": "p50"}],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "q"],
        [{"expression": "a + b", "label": "sum"}]]}}]}
    [widget] = widgets_of(body, series)
    applied, latency, sqs, expression = widget.lines
    assert statistic([v for _, v in applied.points], applied.stat) == 5.0  # both topics' series
    assert latency.dimensions == {"service": "s"} and statistic([v for _, v in latency.points], "p50") == 20.0
    assert not sqs.has_data and "recorded by CloudWatch" in sqs.note
    assert expression.namespace is None and "not locally" in expression.note


def test_statistics():
    values = [1.0, 2.0, 3.0, 4.0]
    assert [statistic(values, s) for s in ("Sum", "Average", "Maximum", "Minimum", "SampleCount", "p99", "p50")] == \
        [10.0, 2.5, 4.0, 1.0, 4.0, 4.0, 2.0]
    assert statistic([], "Sum") is None
