"""A burst at shift change, end to end: the request budget admits what it can, the rest waits in SQS.

The dev stack's budget (cdk.json genesysRateLimit) is read from the deployed dispatcher; the
burst is several times its burst size, so most events are deferred (re-sent with DelaySeconds,
pre-paid) and come back. The budget runs on the wall clock, so this test takes a few seconds of
real time; it asserts no timing, only what must hold whatever the machine's speed.
"""

from __future__ import annotations

import copy

import pytest

pytestmark = pytest.mark.e2e


def _budget(e2e) -> tuple[float, int]:
    env = e2e.pipeline.functions["DispatcherFunctionName"]["Environment"]["Variables"]
    return float(env["REQUEST_BUDGET_RATE"]), int(env["REQUEST_BUDGET_BURST"])


def test_a_burst_beyond_the_budget_is_deferred_in_sqs_and_every_event_ends_once_without_the_dlq(e2e):
    rate, burst = _budget(e2e)
    distinct = [e2e.event("acd.end") for _ in range(4 * burst)]
    copies = [copy.deepcopy(e) for e in distinct[: burst // 2 or 1]]  # Genesys redelivers some during the burst
    sent = e2e.send(*distinct, *copies)
    e2e.settle()

    acc = e2e.assert_accounted()  # sent = applied + duplicate + ..., each event exactly one outcome
    assert acc.counts["applied"] == len(distinct)
    assert acc.counts["duplicate"] == len(copies)
    assert acc.counts["failed"] == 0 and acc.counts["dead_lettered"] == 0
    assert e2e.dead_letter_messages() == []
    assert e2e.executions("FAILED") == []

    results = e2e.pipeline.poller.results
    received = sum(len(r.message_ids) for r in results)
    # Deferred events came back through the main queue: more receives than events sent...
    assert received > len(sent)
    # ...and never as a failed record: no receive count grew toward maxReceiveCount.
    assert all(not r.left for r in results)

    # Genesys saw exactly one write per event and no 429: the budget kept the burst to its rate.
    for e in distinct:
        assert len(e2e.processor_writes(e["detail"]["eventBody"]["conversationId"])) == 1
    assert e2e.sim.request_count("/api/", status=429) == 0
    assert e2e.sim.request_count("/api/") == len(distinct)


def test_a_burst_after_a_429_waits_for_the_pause_and_nothing_fails(e2e):
    rate, burst = _budget(e2e)
    # A 429 with Retry-After 1 s (within the processor's inline wait) pauses the whole environment:
    # admission schedules after the pause and processors hold their requests until it ends.
    e2e.sim.fail_next(1, status=429, retry_after=1)
    events = [e2e.event("acd.end") for _ in range(2 * burst)]
    e2e.send(*events)
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == len(events) and acc.counts["failed"] == 0
    assert e2e.sim.request_count("/api/", status=429) == 1
    assert e2e.sim.request_count("/api/") == len(events) + 1  # the 429'd request was repeated once, nothing else
    assert e2e.dead_letter_messages() == []
