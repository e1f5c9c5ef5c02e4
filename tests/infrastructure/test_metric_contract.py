"""The dashboard and alarms watch the metric names the Lambdas emit.

infra/ keeps its own copy of the names (it must not import Lambda code); this
test fails the moment the two drift apart.
"""
from genesys_pipeline import observability, outcomes
from infra import constants
from infra import observability as infra_observability


def test_outcome_metric_names_match_the_lambdas():
    assert infra_observability.OUTCOME_METRICS == [o.metric_name for o in outcomes.Outcome]


def test_shared_metric_names_match_the_lambdas():
    for name in ("METRIC_EVENTS_RECEIVED", "METRIC_START_EXECUTION_THROTTLED", "METRIC_GENESYS_LATENCY",
                 "METRIC_GENESYS_RATE_LIMITED", "METRIC_TOKEN_FETCHES", "METRIC_FAILURE_MARK_FAILED"):
        assert getattr(infra_observability, name) == getattr(outcomes, name), name


def test_namespace_and_service_dimension_match_the_lambdas():
    assert constants.METRICS_NAMESPACE == observability.NAMESPACE
    assert constants.SERVICE_NAME == observability.SERVICE
