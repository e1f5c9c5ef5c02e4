"""The request budget on DynamoDB (moto) with the Genesys simulator: one environment, one budget, one pause."""

from __future__ import annotations

import itertools
import json

import boto3
import pytest

from genesys_pipeline.budget import (
    BucketRate,
    BudgetGate,
    DynamoDBBudgetStore,
    TokenBucketBudget,
    budget_from_settings,
)
from genesys_pipeline.errors import GenesysRateLimited
from genesys_pipeline.failures import FailureRecord, mark_conversation_failed
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.processing import Processor
from genesys_pipeline.settings import (
    BudgetSettings,
    DispatcherSettings,
    ErrorLoggerSettings,
    ProcessorSettings,
    SettingsError,
)

from .test_processor import (  # noqa: F401 - aws, fresh_caches and sim are fixtures
    TABLE,
    FakeLambdaContext,
    aws,
    conversation,
    execution_input,
    fresh_caches,
    genesys_settings,
    sim,
    task_payload,
)

BUDGET_TABLE = "genesys-test-request-budget"
RATE = BucketRate(requests_per_second=5.0, burst=5)


@pytest.fixture
def budget_table(aws):
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=BUDGET_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def budget(ddb, **kw) -> TokenBucketBudget:
    return TokenBucketBudget(DynamoDBBudgetStore(ddb, BUDGET_TABLE, "genesys"), RATE, **kw)


def item(ddb) -> dict:
    return ddb.get_item(TableName=BUDGET_TABLE, Key={"id": {"S": "genesys"}}, ConsistentRead=True).get("Item", {})


def test_two_containers_share_one_item_with_conditional_writes(budget_table):
    # One instant for both: on a loaded machine a second between the two reservations refilled the burst
    a, b = budget(budget_table, clock=lambda: 1_800_000_000.0), budget(budget_table, clock=lambda: 1_800_000_000.0)
    first = a.reserve(5, 1)
    second = b.reserve(5, 1)  # b's first write assumes no item: conditional check fails, it re-reads and redoes
    assert len(first) == len(second) == 5
    assert max(first) - min(first) == pytest.approx(0, abs=1e-3)  # the burst at one instant
    gaps = [b - a for a, b in itertools.pairwise(second)]
    assert gaps == pytest.approx([0.2] * 4, abs=1e-3)  # then one every 1/rate
    assert second[0] - first[0] == pytest.approx(0.2, abs=0.05)
    stored = item(budget_table)
    assert int(stored["version"]["N"]) == 2
    assert float(stored["tat"]["N"]) == pytest.approx(min(first) + 2.0, abs=0.05)


def test_a_pause_written_by_one_container_is_read_by_another(budget_table):
    a, b = budget(budget_table), budget(budget_table, pause_cache_seconds=0.0)
    a.pause(30)
    assert 29 < b.paused_for() <= 30
    a.pause(1)  # shorter: the longer pause stands
    assert 28 < b.paused_for() <= 30


def test_a_429_pauses_the_environment_and_other_clients_do_not_call_genesys_meanwhile(budget_table, sim, sample_events):
    ev = execution_input(sample_events["acd-end"])
    conv, part = conversation(ev)
    settings = genesys_settings(sim, max_inline_retry_after_seconds=3.0)
    first = GenesysClient(settings, gate=BudgetGate(budget(budget_table), max_inline_wait_seconds=3))
    other = GenesysClient(
        settings, gate=BudgetGate(budget(budget_table, pause_cache_seconds=0.0), max_inline_wait_seconds=3)
    )
    sim.fail_next(1, status=429, retry_after=20)
    with pytest.raises(GenesysRateLimited):
        first.patch_participant_attributes(conv, part, {"a": "1"})
    requests = sim.request_count("/api/")

    with pytest.raises(GenesysRateLimited, match="paused") as held:
        other.patch_participant_attributes(conv, part, {"a": "1"})
    assert 19 < held.value.retry_after <= 20.3  # the first slot after the pause
    assert sim.request_count("/api/") == requests  # held: Genesys was not called
    assert float(item(budget_table)["pausedUntil"]["N"]) > 0


def test_a_retry_spends_from_the_budget_and_a_first_attempt_does_not(budget_table, sim, sample_events):
    b = budget(budget_table)
    genesys = genesys_settings(sim)
    processor = Processor(
        ProcessorSettings(genesys=genesys, idempotency_table=TABLE, external_tag="t-{executionName}"),
        GenesysClient(genesys),
        budget=b,
    )
    processor.process(task_payload(execution_input(sample_events["acd-end"])))  # pre-paid by admission
    assert item(budget_table) == {}
    processor.process(task_payload(execution_input(sample_events["acd-end"]), retry_count=2))
    stored = item(budget_table)
    assert int(stored["version"]["N"]) == 1
    # two requests (PATCH + tag PUT) charged at 5/s: tat 0.4 s past when they went
    assert b.reserve(1, 1)  # and admission goes on from there


def test_a_failure_mark_spends_one_request(budget_table, sim, sample_events):
    ev = execution_input(sample_events["acd-end"])
    b = budget(budget_table)
    genesys = genesys_settings(sim)
    record = FailureRecord(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
        execution_name="x",
        state_machine_arn=None,
        status="FAILED",
        console_url="",
        dedup_key="x",
        conversation_id=ev["conversationId"],
        participant_id=ev["participantId"],
        error="GenesysUnavailable",
        cause=None,
        failed_state="Process",
        start_date=None,
        stop_date=None,
    )
    settings = ErrorLoggerSettings(
        genesys=genesys, mark_failed_conversations=True, failure_status_attribute="aws_processing_status"
    )
    assert mark_conversation_failed(GenesysClient(genesys), record, settings, b)
    assert int(item(budget_table)["version"]["N"]) == 1


def test_budget_settings_come_from_the_environment_and_are_absent_without_a_table():
    env = {"REQUEST_BUDGET_TABLE": "t", "REQUEST_BUDGET_RATE": "4.5", "REQUEST_BUDGET_BURST": "5"}
    assert BudgetSettings.from_env(env) == BudgetSettings(
        table_name="t", key="genesys", requests_per_second=4.5, burst=5
    )
    assert BudgetSettings.from_env({}) is None
    spread = BudgetSettings.from_env(
        {**env, "REQUEST_BUDGET_WINDOW_SECONDS": "60", "REQUEST_BUDGET_SEND_SPREAD_SECONDS": "4"}
    )
    assert (spread.window_seconds, spread.send_spread_seconds) == (60.0, 4.0)
    with pytest.raises(SettingsError, match="REQUEST_BUDGET_BURST 300 fills the 60 s window"):
        BudgetSettings.from_env({**env, "REQUEST_BUDGET_BURST": "300"})
    with pytest.raises(SettingsError, match="REQUEST_BUDGET_RATE"):
        BudgetSettings.from_env({"REQUEST_BUDGET_TABLE": "t"})
    base = {"STATE_MACHINE_ARN": "arn", "DEAD_LETTER_QUEUE_URL": "dlq", "ALLOWED_TOPICS": "t"}
    with pytest.raises(SettingsError, match="MAIN_QUEUE_URL"):
        DispatcherSettings.from_env({**base, **env})
    assert DispatcherSettings.from_env({**base, **env, "MAIN_QUEUE_URL": "q"}).budget.burst == 5


def test_the_handlers_wire_the_budget_from_their_environment(budget_table, sim, sample_events, monkeypatch):
    from processor import handler

    for name, value in {
        "GENESYS_DOMAIN": "mypurecloud.com",
        "GENESYS_SECRET_NAME": "genesys-test",
        "GENESYS_API_BASE_URL": sim.base_url,
        "GENESYS_LOGIN_BASE_URL": sim.base_url,
        "IDEMPOTENCY_TABLE": TABLE,
        "ATTRIBUTE_MAP": json.dumps({"a": "b"}),
        "REQUEST_BUDGET_TABLE": BUDGET_TABLE,
        "REQUEST_BUDGET_RATE": "5",
        "REQUEST_BUDGET_BURST": "5",
        "REQUEST_BUDGET_PAUSE_CACHE_SECONDS": "0.001",
    }.items():
        monkeypatch.setenv(name, value)
    handler.processor.cache_clear()
    try:
        budget_from_settings(BudgetSettings.from_env(), budget_table).pause(60)
        requests = sim.request_count("/api/")
        with pytest.raises(GenesysRateLimited, match="paused"):
            handler.lambda_handler(task_payload(execution_input(sample_events["acd-end"])), FakeLambdaContext())
        assert sim.request_count("/api/") == requests
    finally:
        handler.processor.cache_clear()
