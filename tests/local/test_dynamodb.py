"""Adapter: DynamoDB's conditional writes are atomic on moto too, as the request budget and idempotency need.

Without it, two threads reserving request-budget slots on moto both pass the same ``version``
condition and are handed the same slots: the throughput bench's budget admitted twice its
rate for a while, and the org-wide window answered 429.
"""

from __future__ import annotations

import threading

import pytest

from gcpipe.local import dynamodb
from genesys_pipeline.budget import BucketRate, BudgetConflict, DynamoDBBudgetStore, TokenBucketBudget

TABLE = "budget"
THREADS, ROUNDS, EVENTS = 4, 15, 3


@pytest.fixture
def table(aws):
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return aws


def _together(n: int, work) -> None:
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_the_adapter_wraps_every_item_operation(aws):
    from moto.dynamodb.models import DynamoDBBackend

    from gcpipe.local import _patching

    assert all(_patching.is_patched(DynamoDBBackend, name) for name in dynamodb.ATOMIC_OPERATIONS)


def test_budget_containers_reserving_at_once_on_the_real_store_never_share_a_slot(table):
    clock = lambda: 1_800_000_000.0  # noqa: E731 - one instant: every slot comes from the bucket, none from time
    budgets = [
        TokenBucketBudget(
            DynamoDBBudgetStore(table.client("dynamodb"), TABLE, "genesys"), BucketRate(1.0, 1), clock=clock
        )
        for _ in range(THREADS)
    ]
    slots: list[float] = []
    lock = threading.Lock()

    def reserve(i: int) -> None:
        for _ in range(ROUNDS):
            try:
                got = budgets[i].reserve(EVENTS, 1)
            except BudgetConflict:  # the dispatcher fails open on this; here it just reserves nothing
                continue
            with lock:
                slots.extend(got)

    _together(THREADS, reserve)
    assert slots
    assert len(set(slots)) == len(slots)  # no slot handed out twice
    item = table.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": "genesys"}})["Item"]
    assert float(item["tat"]["N"]) == pytest.approx(1_800_000_000.0 + len(slots))  # every slot paid for once


def test_of_two_conditional_puts_of_one_key_exactly_one_succeeds(table):
    client = table.client("dynamodb")
    won: list[int] = []
    lost: list[int] = []

    def put(i: int) -> None:
        for n in range(20):
            try:
                client.put_item(
                    TableName=TABLE,
                    Item={"id": {"S": f"k{n}"}, "by": {"N": str(i)}},
                    ConditionExpression="attribute_not_exists(id)",
                )
                won.append(n)
            except client.exceptions.ConditionalCheckFailedException:
                lost.append(n)

    _together(THREADS, put)
    assert sorted(won) == list(range(20))  # each key created exactly once
    assert len(lost) == 20 * (THREADS - 1)
