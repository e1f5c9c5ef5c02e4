"""The Genesys request budget: its table, who may touch it, its config checks, its dashboard and alarm."""

from __future__ import annotations

import copy
import json

import pytest

from genesys_pipeline import outcomes
from infra import constants as C
from infra import observability as infra_observability
from infra.config import ConfigError, expected_retry_span_seconds, parse_environment

from .conftest import CDK_CONTEXT, Synthesized, context_with

P = "cdk.json context environments.prod"


def env_raw(name: str = "prod") -> dict:
    return copy.deepcopy(CDK_CONTEXT[C.CONTEXT_ENVIRONMENTS][name])


@pytest.fixture(scope="module")
def unbudgeted() -> Synthesized:
    """dev with ``genesysRateLimit: null``: today's behaviour (the bench's baseline)."""
    return Synthesized("dev", context_with("dev", genesysRateLimit=None))


def test_the_budget_table_is_its_own_on_demand_table_without_ttl(shipped):
    _, table = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    p = table["Properties"]
    assert p["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert p["BillingMode"] == "PAY_PER_REQUEST" and p["SSESpecification"] == {"SSEEnabled": True}
    assert "TimeToLiveSpecification" not in p
    assert shipped.json["Outputs"]["RequestBudgetTableName"]["Value"] == {
        "Ref": shipped.one("AWS::DynamoDB::Table", "RequestBudget")[0]
    }


def test_every_function_that_calls_genesys_gets_the_same_budget(shipped):
    budget_id, _ = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    rl = shipped.config.genesys_rate_limit
    for name in ("Dispatcher", "Processor", "ErrorLogger"):
        env = shipped.function(name)["Environment"]["Variables"]
        assert env["REQUEST_BUDGET_TABLE"] == {"Ref": budget_id}, name
        assert (env["REQUEST_BUDGET_RATE"], env["REQUEST_BUDGET_BURST"]) == (
            f"{rl.requests_per_second:g}",
            str(rl.burst),
        ), name
        assert env["REQUEST_BUDGET_KEY"] == C.BUDGET_ITEM_KEY, name
        # Admission runs under the rate by the window and the send spread (budget.admission_rate).
        assert env["REQUEST_BUDGET_WINDOW_SECONDS"] == "60", name
        assert env["REQUEST_BUDGET_SEND_SPREAD_SECONDS"] == str(
            shipped.config.dispatcher.max_batching_window_seconds + C.BUDGET_SEND_SPREAD_BASE_SECONDS
        ), name


def test_only_get_and_update_of_the_budget_item_are_granted(shipped):
    budget_id, _ = shipped.one("AWS::DynamoDB::Table", "RequestBudget")
    for role in ("DispatcherRole", "ProcessorRole", "ErrorLoggerRole"):
        on_budget = [s for s in shipped.policy_statements(role) if s["Resource"] == {"Fn::GetAtt": [budget_id, "Arn"]}]
        assert [sorted(s["Action"]) for s in on_budget] == [["dynamodb:GetItem", "dynamodb:UpdateItem"]], role


def test_the_dispatcher_may_re_send_deferred_events_to_the_main_queue(shipped):
    main_id, _ = shipped.one("AWS::SQS::Queue", "QueuesMainQueue")
    sends = [
        s
        for s in shipped.policy_statements("DispatcherRole")
        if "sqs:SendMessage" in s["Action"] and s["Resource"] == {"Fn::GetAtt": [main_id, "Arn"]}
    ]
    assert sends
    env = shipped.function("Dispatcher")["Environment"]["Variables"]
    assert env["MAIN_QUEUE_URL"] == {"Ref": main_id}
    assert env["GENESYS_REQUESTS_PER_EVENT"] == ("2" if shipped.config.external_tag else "1")


def test_a_null_rate_limit_means_no_table_no_admission_and_no_alarm(unbudgeted):
    assert unbudgeted.config.genesys_rate_limit is None
    assert [k for k in unbudgeted.resources("AWS::DynamoDB::Table") if "RequestBudget" in k] == []
    for name in ("Dispatcher", "Processor", "ErrorLogger"):
        env = unbudgeted.function(name)["Environment"]["Variables"]
        assert not [k for k in env if k.startswith("REQUEST_BUDGET_") or k == "MAIN_QUEUE_URL"], name
    assert not [k for k in unbudgeted.resources("AWS::CloudWatch::Alarm") if "GenesysRateLimitedShare" in k]
    assert "RequestBudgetTableName" not in unbudgeted.json["Outputs"]


def test_the_429_share_alarm_divides_429s_by_requests_sent_at_the_configured_threshold(shipped):
    [(_, alarm)] = [
        (k, v["Properties"])
        for k, v in shipped.resources("AWS::CloudWatch::Alarm").items()
        if "GenesysRateLimitedShare" in k
    ]
    assert alarm["Threshold"] == shipped.config.genesys_rate_limit.alarm_share_429
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    expression = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression and "limited / requests" in expression[0]["Expression"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert names == {"GenesysRateLimited", "GenesysRequests"}


def test_the_dashboard_shows_budget_use_waits_and_429s(shipped):
    _, dash = shipped.one("AWS::CloudWatch::Dashboard")
    body = json.dumps(dash["Properties"]["DashboardBody"])
    for metric in (
        "GenesysRequests",
        "BudgetTokensReserved",
        "BudgetTokensSpent",
        "EventsDeferred",
        "BudgetDeferralSeconds",
        "GenesysRequestsHeld",
        "GenesysRateLimited",
    ):
        assert metric in body, metric


def test_budget_metric_names_match_the_lambdas():
    for name in (
        "METRIC_EVENTS_DEFERRED",
        "METRIC_BUDGET_DEFERRAL_SECONDS",
        "METRIC_BUDGET_TOKENS_RESERVED",
        "METRIC_BUDGET_TOKENS_SPENT",
        "METRIC_BUDGET_CONFLICTS",
        "METRIC_BUDGET_UNAVAILABLE",
        "METRIC_GENESYS_REQUESTS",
        "METRIC_GENESYS_REQUESTS_HELD",
    ):
        assert getattr(infra_observability, name) == getattr(outcomes, name), name


# ---------------------------------------------------------------- config


def parse_with(**rate_limit) -> object:
    raw = env_raw()
    raw["genesysRateLimit"] = {**raw["genesysRateLimit"], **rate_limit}
    return parse_environment("prod", raw)


def test_null_is_accepted_and_means_no_budget():
    raw = env_raw()
    raw["genesysRateLimit"] = None
    assert parse_environment("prod", raw).genesys_rate_limit is None
    del raw["genesysRateLimit"]  # what the app sees of a null: the CDK drops null context values
    assert parse_environment("prod", raw).genesys_rate_limit is None


def test_a_misspelt_key_is_not_taken_for_no_budget():
    raw = env_raw()
    raw["genesysRatelimit"] = raw.pop("genesysRateLimit")
    with pytest.raises(ConfigError, match=rf"^{P}\.genesysRatelimit: unknown key"):
        parse_environment("prod", raw)


BAD = [
    ("not an object", 5, f"{P}.genesysRateLimit: expected an object, got 5"),
    ("rate zero", {"requestsPerSecond": 0}, f"{P}.genesysRateLimit.requestsPerSecond: 0 is out of range"),
    ("rate a string", {"requestsPerSecond": "5"}, f"{P}.genesysRateLimit.requestsPerSecond: '5' is not a number"),
    ("burst a float", {"burst": 2.5}, f"{P}.genesysRateLimit.burst: 2.5 is not an integer from 1 to 1000"),
    ("share over 1", {"alarmShare429": 2}, f"{P}.genesysRateLimit.alarmShare429: 2 is out of range"),
    ("unknown key", {"rps": 1}, f"{P}.genesysRateLimit.rps: unknown key; allowed keys:"),
    # prod: processorReservedConcurrency 20 and an external tag (2 requests per event)
    (
        "burst over reserved concurrency",
        {"burst": 42},
        f"{P}.genesysRateLimit.burst: 42 lets 21 executions start at once, over processorReservedConcurrency 20",
    ),
    # Admission keeps the burst out of every minute's requests: half a minute's worth would halve the rate.
    (
        "burst over half a minute's requests",
        {"requestsPerSecond": 0.5, "burst": 20},
        f"{P}.genesysRateLimit.burst: 20 is over half of the 30 requests a 60 s Genesys window holds",
    ),
    (
        "rate the processors cannot carry",
        {"requestsPerSecond": 50},
        f"{P}.genesysRateLimit.requestsPerSecond: 50 keeps about 25 processors busy",
    ),
]


@pytest.mark.parametrize("case, change, message", BAD, ids=[c[0] for c in BAD])
def test_a_bad_rate_limit_fails_synth_with_one_line_naming_the_key(case, change, message):
    raw = env_raw()
    if isinstance(change, dict):
        raw["genesysRateLimit"] = {**raw["genesysRateLimit"], **change}
    else:
        raw["genesysRateLimit"] = change
    with pytest.raises(ConfigError) as raised:
        parse_environment("prod", raw)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_a_rate_limited_retry_budget_too_short_to_outlast_a_pause_fails_synth():
    raw = env_raw()
    raw["retries"]["rateLimited"] = {"intervalSeconds": 1, "maxAttempts": 3, "backoffRate": 1.0, "maxDelaySeconds": 1}
    with pytest.raises(ConfigError, match=rf"^{P}\.retries\.rateLimited: waits about 1\.5 s in all"):
        parse_environment("prod", raw)


def test_the_shipped_retry_budgets_outlast_a_long_pause_many_times_over(shipped):
    assert expected_retry_span_seconds(shipped.config.retries.rate_limited) >= 5 * C.BUDGET_MAX_RETRY_AFTER_SECONDS
