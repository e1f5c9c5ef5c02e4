"""The dashboard and alarms watch the metric names the Lambdas emit.

infra/ keeps its own copy of the names (it must not import Lambda code); this
test fails the moment the two drift apart.
"""

from genesys_pipeline import observability, outcomes
from infra import constants
from infra import observability as infra_observability


def test_outcome_metric_names_match_the_lambdas():
    assert [o.metric_name for o in outcomes.Outcome] == infra_observability.OUTCOME_METRICS


def test_shared_metric_names_match_the_lambdas():
    for name in (
        "METRIC_EVENTS_RECEIVED",
        "METRIC_START_EXECUTION_THROTTLED",
        "METRIC_GENESYS_LATENCY",
        "METRIC_GENESYS_RATE_LIMITED",
        "METRIC_TOKEN_FETCHES",
        "METRIC_FAILURE_MARK_FAILED",
    ):
        assert getattr(infra_observability, name) == getattr(outcomes, name), name


def test_namespace_and_service_dimension_match_the_lambdas():
    assert constants.METRICS_NAMESPACE == observability.NAMESPACE
    assert constants.SERVICE_NAME == observability.SERVICE


# --- dimensions: the template watches exactly the series the Lambdas emit -------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from .conftest import ROOT  # noqa: E402

EMITTER = """
import json, sys
from datetime import datetime, timedelta, timezone
from aws_lambda_powertools.metrics import MetricUnit
from genesys_pipeline import outcomes
from genesys_pipeline.observability import metrics, record_end_to_end_lag, record_outcome

topics = json.loads(sys.argv[1])
for outcome in outcomes.Outcome:
    for topic in topics + [None]:
        record_outcome(outcome, dedup_key="k", topic=topic)
now = datetime.now(timezone.utc)
record_end_to_end_lag(now - timedelta(seconds=2), now)
for constant in dir(outcomes):  # every shared metric name, through the metric set the handlers flush
    if constant.startswith("METRIC_") and constant != "METRIC_END_TO_END_LAG":
        metrics.add_metric(name=getattr(outcomes, constant), unit=MetricUnit.Count, value=1)
class Context: function_name = "fn"
metrics.provider.add_cold_start_metric(Context())
metrics.flush_metrics()
"""


def emitted_series(environment: str, topics: list[str]) -> set[tuple[str, frozenset]]:
    """(metric name, dimensions) of every EMF line the Lambdas' own code prints, in a fresh interpreter with
    the function environment the template sets (observability reads ENVIRONMENT at import)."""
    env = {
        **os.environ,
        "ENVIRONMENT": environment,
        "PYTHONPATH": str(ROOT / "lambdas"),
        "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
    }
    done = subprocess.run(
        [sys.executable, "-c", EMITTER, json.dumps(topics)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    series = set()
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if "_aws" not in record:
            continue  # a log line
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == constants.METRICS_NAMESPACE
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((d, record[d]) for d in dimension_set)
                series |= {(m["Name"], dims) for m in directive["Metrics"]}
    return series


def _dashboard_body(s) -> dict:
    _, dash = s.one("AWS::CloudWatch::Dashboard")
    body = dash["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # Fn::Join of literal parts and tokens (names, region)
        body = "".join(p if isinstance(p, str) else "TOKEN" for p in body["Fn::Join"][1])
    return json.loads(body)


def watched_series(s) -> list[tuple[str, str, frozenset]]:
    """(where, metric name, dimensions) of every custom metric a widget or an alarm of the template uses."""
    watched = []
    for lid, alarm in s.resources("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        stats = (
            [props]
            if "MetricName" in props
            else [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        )
        for m in stats:
            if m["Namespace"] == constants.METRICS_NAMESPACE:
                watched.append((lid, m["MetricName"], frozenset((d["Name"], d["Value"]) for d in m["Dimensions"])))
    for widget in _dashboard_body(s)["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            if metric and metric[0] == constants.METRICS_NAMESPACE:
                pairs = [x for x in metric[2:] if isinstance(x, str)]
                watched.append(
                    (
                        widget["properties"].get("title"),
                        metric[1],
                        frozenset(zip(pairs[::2], pairs[1::2], strict=False)),
                    )
                )
    return watched


def test_every_widget_and_alarm_watches_a_series_the_lambdas_emit(shipped):
    environment = {
        fn["Properties"]["Environment"]["Variables"]["ENVIRONMENT"]
        for fn in shipped.resources("AWS::Lambda::Function").values()
    }
    assert environment == {shipped.config.name}
    emitted = emitted_series(shipped.config.name, list(shipped.config.topics))
    watched = watched_series(shipped)
    assert len(watched) > 20
    missing = [(where, name, sorted(dims)) for where, name, dims in watched if (name, dims) not in emitted]
    assert missing == []


def test_every_emitted_metric_carries_service_and_environment():
    for name, dims in emitted_series("prod", ["v2.detail.events.conversation.{id}.acd.end"]):
        assert {("service", constants.SERVICE_NAME), ("environment", "prod")} <= dims, name


def test_per_topic_outcomes_carry_the_short_topic_name_and_bounded_values():
    emitted = emitted_series("dev", ["v2.detail.events.conversation.{id}.acd.end", "not-a-topic"])
    topics = {dict(dims).get("topic") for name, dims in emitted if name == "EventsApplied"}
    assert topics == {None, "acd.end", "other"}  # None: the aggregate series the alarms watch


def test_end_to_end_lag_on_the_dashboard_at_p50_and_p99(shipped):
    stats = {
        m[-1].get("stat")
        for w in _dashboard_body(shipped)["widgets"]
        for m in w.get("properties", {}).get("metrics", [])
        if "EndToEndLagMs" in m
    }
    assert {"p50", "p99"} <= stats


def test_infra_dimension_names_match_the_lambdas():
    from genesys_pipeline.outcomes import TOPIC_OTHER

    assert infra_observability.TOPIC_OTHER == TOPIC_OTHER
    assert infra_observability.METRIC_END_TO_END_LAG == outcomes.METRIC_END_TO_END_LAG
