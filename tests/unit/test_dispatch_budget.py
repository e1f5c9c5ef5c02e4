"""Admission at the dispatcher: events beyond the request budget wait in SQS, pre-paid, never toward the DLQ."""

from __future__ import annotations

import copy
import time
from datetime import timedelta

import pytest

from genesys_pipeline.budget import MAX_DEFERRAL_SECONDS, BucketRate, InMemoryBudgetStore, TokenBucketBudget
from genesys_pipeline.dispatch import ATTR_BUDGET_SLOT, Dispatcher, StartExecutionThrottled
from genesys_pipeline.outcomes import (
    METRIC_BUDGET_TOKENS_RESERVED,
    METRIC_BUDGET_UNAVAILABLE,
    METRIC_EVENTS_DEFERRED,
    Outcome,
)
from genesys_pipeline.settings import BudgetSettings

from .test_dispatch import NOW, InMemoryDeadLetters, InMemoryStarter, batch, failed_ids, fresh, record, settings

T0 = NOW.timestamp()
RATE = BucketRate(requests_per_second=2.0, burst=4)
BUDGET_SETTINGS = BudgetSettings(table_name="budget", key="genesys", requests_per_second=2.0, burst=4)


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class InMemoryMainQueue:
    """The main queue's SendMessageBatch, as the dispatcher sees it."""

    def __init__(self):
        self.messages: list = []
        self.calls = 0
        self.fail_ids: set[str] = set()

    def send_delayed(self, messages):
        self.calls += 1
        assert len(messages) <= 10
        errors = {}
        for m in messages:
            if m.message_id in self.fail_ids:
                errors[m.message_id] = ConnectionError("SQS unreachable")
            else:
                self.messages.append(m)
                errors[m.message_id] = None
        return errors

    def as_records(self, start: int = 0) -> list[dict]:
        """The deferred messages as the next receive hands them out (new messages, receive count 1)."""
        out = []
        for n, m in enumerate(self.messages[start:], start=start):
            r = record(m.body, f"deferred-{n}")
            r["messageAttributes"] = {k: {"dataType": "String", "stringValue": v} for k, v in m.attributes.items()}
            out.append(r)
        return out


class BrokenBudget:
    def now(self):
        return T0

    def reserve(self, events, tokens_per_event):
        raise ConnectionError("DynamoDB unreachable")

    def spend(self, tokens):
        raise ConnectionError("DynamoDB unreachable")


def distinct_events(sample_events, n: int) -> list[dict]:
    out = []
    for i in range(n):
        envelope = fresh(sample_events["acd-end"], age=timedelta(minutes=1))
        envelope["detail"]["metadata"]["CorrelationId"] = f"7272d362-0000-4000-8000-{i:012d}"
        out.append(envelope)
    return out


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return InMemoryBudgetStore()


@pytest.fixture
def queue():
    return InMemoryMainQueue()


@pytest.fixture
def metric_names(monkeypatch):
    from genesys_pipeline import observability

    names: list[str] = []
    monkeypatch.setattr(
        observability.metrics, "add_metric", lambda name, unit, value: names.extend([name] * int(value))
    )
    return names


def budgeted(starter, store, queue, clock, **overrides) -> Dispatcher:
    budget = TokenBucketBudget(store, RATE, clock=clock)
    values = dict(budget=BUDGET_SETTINGS, main_queue_url="https://sqs/main", requests_per_event=1)
    values.update(overrides)
    return Dispatcher(
        settings(**values), starter, InMemoryDeadLetters(), budget=budget, deferrals=queue, now=lambda: NOW
    )


def test_a_burst_starts_the_budgets_burst_and_defers_the_rest_without_any_batch_item_failure(
    sample_events, store, queue, clock, metric_names
):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    events = distinct_events(sample_events, 10)
    response = d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(events)]))

    assert response["batchItemFailures"] == []  # every record acknowledged: none walks toward maxReceiveCount
    assert len(starter.names) == RATE.burst
    assert len(queue.messages) == 6 and queue.calls == 1  # one SendMessageBatch
    assert [m.delay_seconds for m in queue.messages] == [1, 1, 2, 2, 3, 3]  # ceil(slot - now), slots 0.5 s apart
    assert all(float(m.attributes[ATTR_BUDGET_SLOT]) > T0 for m in queue.messages)
    assert metric_names.count(METRIC_EVENTS_DEFERRED) == 6
    assert metric_names.count(METRIC_BUDGET_TOKENS_RESERVED) == 10
    assert store.writes == 1  # one conditional write for the whole batch


def test_a_deferred_event_comes_back_pre_paid_and_starts_without_spending_again(sample_events, store, queue, clock):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 6))]))
    writes, tat = store.writes, store.read().tat

    clock.now = T0 + 2  # SQS hands them back after their DelaySeconds
    response = d.dispatch(batch(*queue.as_records()))

    assert response["batchItemFailures"] == []
    assert len(starter.names) == 6
    assert (store.writes, store.read().tat) == (writes, tat)  # nothing reserved twice


def test_a_pre_paid_event_that_is_still_early_is_deferred_again_keeping_its_slot(sample_events, store, queue, clock):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 10))]))
    back = queue.as_records()
    last = back[-1]
    slot = float(last["messageAttributes"][ATTR_BUDGET_SLOT]["stringValue"])
    writes = store.writes
    d.dispatch(batch(last))  # handed out early (clock unchanged)
    again = queue.messages[-1]
    assert float(again.attributes[ATTR_BUDGET_SLOT]) == slot
    assert store.writes == writes


def test_events_beyond_sqs_longest_delay_wait_900_s_unpaid_and_are_admitted_again(sample_events, store, queue, clock):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    store.write_tat(store.read(), T0 + MAX_DEFERRAL_SECONDS + 100)  # a backlog longer than 15 minutes
    d.dispatch(batch(record(distinct_events(sample_events, 1)[0], "m0")))
    [message] = queue.messages
    assert message.delay_seconds == MAX_DEFERRAL_SECONDS
    assert ATTR_BUDGET_SLOT not in message.attributes
    assert starter.names == {}


def test_when_the_deferral_send_fails_that_record_goes_back_to_sqs(sample_events, store, queue, clock):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    queue.fail_ids = {"m7"}
    response = d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 8))]))
    assert failed_ids(response) == {"m7"}
    assert len(queue.messages) == 3 and len(starter.names) == 4


def test_a_redelivered_message_is_started_not_deferred_so_a_poison_message_still_reaches_the_dlq(
    sample_events, store, queue, clock
):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    events = distinct_events(sample_events, 6)
    d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(events[:4])]))  # the burst is spent
    starter.failures[d.plan(record(events[4], "x"), NOW).event.dedup_key] = StartExecutionThrottled("throttled")
    response = d.dispatch(batch(record(events[4], "m4", receive_count=3), record(events[5], "m5")))
    assert failed_ids(response) == {"m4"}  # failed again: its receive count grows toward the DLQ as configured
    assert [m.message_id for m in queue.messages] == ["m5"]  # only the new one waits


def test_a_copy_of_a_deferred_event_in_the_same_batch_is_a_duplicate_and_nothing_is_lost(
    sample_events, store, queue, clock, monkeypatch
):
    outcomes: list[str] = []
    monkeypatch.setattr(
        "genesys_pipeline.dispatch.record_outcome", lambda outcome, **kw: outcomes.append(outcome.value)
    )
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    events = distinct_events(sample_events, 5)
    records = [record(e, f"m{i}") for i, e in enumerate(events)] + [record(copy.deepcopy(events[4]), "copy")]
    response = d.dispatch(batch(*records))
    assert response["batchItemFailures"] == []
    assert len(starter.names) == 4 and [m.message_id for m in queue.messages] == ["m4"]
    assert outcomes == [Outcome.DUPLICATE.value]  # the copy; m4 gets its outcome when it comes back


def test_a_budget_that_does_not_answer_fails_open(sample_events, queue, metric_names):
    starter = InMemoryStarter()
    d = Dispatcher(
        settings(budget=BUDGET_SETTINGS, main_queue_url="https://sqs/main"),
        starter,
        InMemoryDeadLetters(),
        budget=BrokenBudget(),
        deferrals=queue,
        now=lambda: NOW,
    )
    response = d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 6))]))
    assert response["batchItemFailures"] == []
    assert len(starter.names) == 6 and queue.messages == []
    assert metric_names.count(METRIC_BUDGET_UNAVAILABLE) == 1


def test_events_with_an_external_tag_cost_two_tokens(sample_events, store, queue, clock):
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock, requests_per_event=2)
    d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 4))]))
    assert len(starter.names) == 2 and len(queue.messages) == 2


def test_a_saturated_budget_never_makes_the_dispatcher_sleep(sample_events, store, queue, clock, monkeypatch):
    # The visibility-timeout trap: a dispatcher holding a batch must not wait on the budget.
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail(f"the dispatcher slept {s}s"))
    starter = InMemoryStarter()
    d = budgeted(starter, store, queue, clock)
    store.write_tat(store.read(), T0 + 600)
    response = d.dispatch(batch(*[record(e, f"m{i}") for i, e in enumerate(distinct_events(sample_events, 10))]))
    assert response["batchItemFailures"] == [] and starter.names == {}
    assert all(m.delay_seconds <= MAX_DEFERRAL_SECONDS for m in queue.messages)


def test_a_budget_needs_the_main_queue_and_the_other_way_round(store, queue, clock):
    with pytest.raises(ValueError):
        Dispatcher(settings(), InMemoryStarter(), InMemoryDeadLetters(), budget=TokenBucketBudget(store, RATE))
    with pytest.raises(ValueError):
        Dispatcher(settings(), InMemoryStarter(), InMemoryDeadLetters(), deferrals=queue)


@pytest.mark.parametrize("copy_first", [True, False], ids=["copy-starts-first", "original-starts-first"])
def test_a_deferred_event_whose_original_comes_back_is_one_delivery_with_one_outcome(
    sample_events, store, queue, clock, monkeypatch, copy_first
):
    # Given a message m4 first received at 12:29:59, deferred by the budget (a delayed copy on the main queue),
    # whose dispatcher then died before SQS deleted m4 (the chaos soak's dispatcher crash after part of a batch)
    from .test_dispatch import idempotent_starter, received

    outcomes: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "genesys_pipeline.dispatch.record_outcome",
        lambda outcome, **kw: outcomes.append((outcome.value, kw.get("message_id"))),
    )
    sfn, starter = idempotent_starter()
    d = budgeted(starter, store, queue, clock)
    events = distinct_events(sample_events, 5)
    first = NOW - timedelta(seconds=1)
    d.dispatch(batch(*[received(e, f"m{i}", first) for i, e in enumerate(events)]))
    [deferred] = queue.as_records()
    deferred["attributes"]["ApproximateFirstReceiveTimestamp"] = str(
        int((NOW + timedelta(seconds=3)).timestamp() * 1000)
    )
    original = received(events[4], "m4", first, 2)
    # When both come back, in either order, the execution closing in between
    clock.now = T0 + 3
    for message in (deferred, original) if copy_first else (original, deferred):
        d.dispatch(batch(message))
        for execution in sfn.executions.values():
            execution["status"] = "SUCCEEDED"
    # Then one execution, and no duplicate outcome: the two are one delivery (the soak counted applied and
    # duplicate for one sent event, which broke the invariant)
    assert len(sfn.executions) == 5
    assert outcomes == []
