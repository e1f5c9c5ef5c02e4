"""The request budget's arithmetic and its optimistic writes, on the in-memory store (no AWS)."""

from __future__ import annotations

import threading

import pytest

from genesys_pipeline import observability
from genesys_pipeline.budget import (
    MAX_DEFERRAL_SECONDS,
    BucketRate,
    BudgetGate,
    BudgetState,
    InMemoryBudgetStore,
    TokenBucketBudget,
    admission_rate,
    budget_from_settings,
    schedule,
)
from genesys_pipeline.settings import BudgetSettings
from genesys_pipeline.errors import GenesysRateLimited
from genesys_pipeline.outcomes import METRIC_GENESYS_REQUESTS, METRIC_GENESYS_REQUESTS_HELD

T0 = 1_800_000_000.0
RATE = BucketRate(requests_per_second=2.0, burst=4)


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def metric_names(monkeypatch):
    names: list[str] = []
    monkeypatch.setattr(
        observability.metrics, "add_metric", lambda name, unit, value: names.extend([name] * int(value))
    )
    return names


# ---------------------------------------------------------------- the schedule (GCRA)


def test_an_idle_budget_lets_the_burst_go_at_once_then_one_per_interval():
    tat, slots = schedule(BudgetState(), RATE, events=7, tokens_per_event=1, now=T0, horizon=900)
    assert slots == (T0, T0, T0, T0, T0 + 0.5, T0 + 1.0, T0 + 1.5)
    assert tat == T0 + 3.5


def test_an_event_with_two_requests_takes_two_tokens_and_starts_when_both_conform():
    _, slots = schedule(BudgetState(), RATE, events=3, tokens_per_event=2, now=T0, horizon=900)
    assert slots == (T0, T0, T0 + 1.0)


def test_a_budget_used_long_ago_is_idle_again():
    _, slots = schedule(BudgetState(tat=T0 - 60), RATE, events=4, tokens_per_event=1, now=T0, horizon=900)
    assert slots == (T0,) * 4


def test_after_a_pause_the_budget_restarts_at_the_rate_without_a_burst():
    paused = BudgetState(tat=T0, paused_until=T0 + 10)
    _, slots = schedule(paused, RATE, events=3, tokens_per_event=1, now=T0, horizon=900)
    assert slots == (T0 + 10.5, T0 + 11.0, T0 + 11.5)


def test_events_beyond_the_horizon_get_no_slot_and_are_not_charged():
    tat, slots = schedule(BudgetState(), RATE, events=10, tokens_per_event=1, now=T0, horizon=2.0)
    assert slots == (T0, T0, T0, T0, T0 + 0.5, T0 + 1.0, T0 + 1.5, T0 + 2.0)
    assert tat == T0 + 4.0  # the two left out did not move the bucket


def test_at_no_moment_do_more_than_burst_events_start_at_once():
    # The reserved-concurrency trap: starts per instant are bounded by the burst (config checks
    # burst <= processorReservedConcurrency), whatever the backlog.
    _, slots = schedule(BudgetState(), RATE, events=500, tokens_per_event=1, now=T0, horizon=MAX_DEFERRAL_SECONDS)
    per_instant: dict[float, int] = {}
    for s in slots:
        per_instant[s] = per_instant.get(s, 0) + 1
    assert max(per_instant.values()) == RATE.burst
    window = [s for s in slots if T0 + 10 <= s < T0 + 20]
    assert len(window) == 20  # 2 per second after the burst


# ---------------------------------------------------------------- what reaches Genesys's window

WINDOW, SPREAD = 60.0, 3.0


def _most_in_a_window(sends: list[float], window: float) -> int:
    """The most requests in any (t - window, t]: what a sliding-window limit counts when it sees the one at t."""
    ordered = sorted(sends)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while ordered[first] <= t - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def _sends(slots: tuple[float, ...], pattern: str) -> list[float]:
    """Each slot's request as it reaches Genesys, 0..SPREAD s late (SQS whole-second delays, the
    batching window, the start): late in runs then on time, the worst case for a window."""
    if pattern == "alternate":
        return [s + (SPREAD if i % 2 == 0 else 0.0) for i, s in enumerate(slots)]
    return [s + (SPREAD if (i // int(pattern)) % 2 == 0 else 0.0) for i, s in enumerate(slots)]


@pytest.mark.parametrize("limit, burst", [(1.0, 1), (4.5, 5), (4.5, 10), (20.0, 1)])
@pytest.mark.parametrize("pattern", ["alternate", "10", "60", "300"])
def test_requests_late_by_up_to_the_send_spread_still_fit_the_genesys_window(limit, burst, pattern):
    # The 429s of the first budgeted bench: admission at exactly the limit leaves every window
    # full, so any request that reaches Genesys a little later than the one before it is one too
    # many. Admission runs at admission_rate instead: a backlog of 10 minutes, sent up to the
    # spread late, never puts more than limit x window requests in a window.
    rate = BucketRate(admission_rate(limit, burst, window_seconds=WINDOW, send_spread_seconds=SPREAD), burst)
    _, slots = schedule(
        BudgetState(), rate, events=int(limit * 600), tokens_per_event=1, now=T0, horizon=MAX_DEFERRAL_SECONDS
    )
    assert _most_in_a_window(_sends(slots, pattern), WINDOW) <= limit * WINDOW


@pytest.mark.parametrize("limit, burst", [(1.0, 1), (4.5, 5)])
def test_admission_at_exactly_the_limit_overfills_the_window_once_requests_are_late_unevenly(limit, burst):
    _, slots = schedule(
        BudgetState(),
        BucketRate(limit, burst),
        events=int(limit * 600),
        tokens_per_event=1,
        now=T0,
        horizon=MAX_DEFERRAL_SECONDS,
    )
    assert _most_in_a_window(slots, WINDOW) <= limit * WINDOW + burst  # on time, it (nearly) fits...
    assert _most_in_a_window(_sends(slots, "60"), WINDOW) > limit * WINDOW  # ...a few seconds late, it does not


def test_the_admission_rate_keeps_the_burst_and_the_spread_out_of_the_window():
    assert admission_rate(1.0, 1, window_seconds=60, send_spread_seconds=3) == pytest.approx(59 / 63)
    assert admission_rate(4.5, 5, window_seconds=60, send_spread_seconds=3) == pytest.approx(265 / 63)
    with pytest.raises(ValueError):
        admission_rate(0.1, 6, window_seconds=60, send_spread_seconds=3)  # the burst fills the window


def test_the_deployed_budget_schedules_at_the_admission_rate_not_the_configured_one():
    settings = BudgetSettings(
        table_name="t", key="genesys", requests_per_second=4.5, burst=5, window_seconds=60.0, send_spread_seconds=4.0
    )
    budget = budget_from_settings(settings, client=object())
    assert budget.rate == BucketRate(265 / 64, 5)


# ---------------------------------------------------------------- the shared budget


def test_two_containers_sharing_the_item_never_hand_out_the_same_slot_twice():
    store = InMemoryBudgetStore()
    clock = Clock()
    a = TokenBucketBudget(store, RATE, clock=clock)
    b = TokenBucketBudget(store, RATE, clock=clock)
    first = a.reserve(3, 1)
    second = b.reserve(3, 1)  # b's cached state is stale: one conflict, then a re-read
    third = a.reserve(2, 1)
    slots = first + second + third
    assert slots == (T0, T0, T0, T0, T0 + 0.5, T0 + 1.0, T0 + 1.5, T0 + 2.0)
    assert store.read().tat == T0 + 4.0


def test_concurrent_reservations_from_many_threads_conserve_tokens():
    store = InMemoryBudgetStore()
    clock = Clock()
    budgets = [TokenBucketBudget(store, RATE, clock=clock) for _ in range(8)]
    results: list[tuple[float, ...]] = []
    lock = threading.Lock()

    def reserve(budget: TokenBucketBudget) -> None:
        for _ in range(5):
            got = budget.reserve(2, 1)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=reserve, args=(b,)) for b in budgets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots = sorted(s for r in results for s in r)
    assert len(slots) == 80
    assert store.read().tat == T0 + 80 * RATE.interval
    # exactly the schedule one container alone would have produced
    assert slots == sorted(schedule(BudgetState(), RATE, events=80, tokens_per_event=1, now=T0, horizon=900)[1])


def test_debt_from_retries_pushes_the_next_admission_back():
    store = InMemoryBudgetStore()
    budget = TokenBucketBudget(store, RATE, clock=Clock())
    budget.spend(6)  # six retry requests went out unscheduled
    assert budget.reserve(1, 1) == (T0 + 1.5,)


def test_a_pause_is_seen_at_once_by_its_container_and_within_the_cache_age_by_others():
    store = InMemoryBudgetStore()
    clock = Clock()
    here = TokenBucketBudget(store, RATE, clock=clock, pause_cache_seconds=1.0)
    there = TokenBucketBudget(store, RATE, clock=clock, pause_cache_seconds=1.0)
    assert there.paused_for() == 0  # cached now
    here.pause(5)
    assert here.paused_for() == 5
    assert there.paused_for() == 0  # its cache is fresh
    clock.now += 1.0
    assert there.paused_for() == 4.0
    clock.now += 4.5
    assert here.paused_for() == 0 and there.paused_for() == 0


def test_a_shorter_pause_never_shortens_a_longer_one():
    store = InMemoryBudgetStore()
    budget = TokenBucketBudget(store, RATE, clock=Clock())
    budget.pause(30)
    budget.pause(2)
    assert store.read().paused_until == T0 + 30


def test_admission_schedules_after_a_pause_another_container_wrote():
    store = InMemoryBudgetStore()
    clock = Clock()
    processor = TokenBucketBudget(store, RATE, clock=clock)
    dispatcher = TokenBucketBudget(store, RATE, clock=clock)
    dispatcher.reserve(1, 1)  # caches the state
    processor.pause(10)  # bumps the version: the dispatcher's next write conflicts and re-reads
    assert dispatcher.reserve(1, 1)[0] >= T0 + 10


# ---------------------------------------------------------------- the gate in GenesysClient


def test_while_paused_a_request_is_held_without_calling_genesys(metric_names):
    store = InMemoryBudgetStore()
    clock = Clock()
    budget = TokenBucketBudget(store, RATE, clock=clock)
    slept: list[float] = []
    gate = BudgetGate(budget, max_inline_wait_seconds=3, sleep=slept.append)
    gate.rate_limited(10)
    with pytest.raises(GenesysRateLimited) as raised:
        gate.before_request("PATCH", "/api/v2/conversations/c/participants/p/attributes")
    assert raised.value.retry_after == 10.5  # its fresh slot: the budget restarts at the rate after the pause
    assert slept == []
    assert metric_names.count(METRIC_GENESYS_REQUESTS_HELD) == 1
    assert METRIC_GENESYS_REQUESTS not in metric_names


def test_a_short_pause_is_slept_out_inline_like_a_short_retry_after(metric_names):
    budget = TokenBucketBudget(InMemoryBudgetStore(), RATE, clock=Clock())
    slept: list[float] = []
    gate = BudgetGate(budget, max_inline_wait_seconds=3, sleep=slept.append)
    gate.rate_limited(2)
    gate.before_request("PATCH", "/x")
    assert slept == [2.5]  # the pause, then one interval: the first slot after it
    assert metric_names.count(METRIC_GENESYS_REQUESTS) == 1


def test_an_unpaused_request_goes_and_is_counted(metric_names):
    gate = BudgetGate(
        TokenBucketBudget(InMemoryBudgetStore(), RATE, clock=Clock()),
        max_inline_wait_seconds=3,
        sleep=lambda s: pytest.fail("must not sleep"),
    )
    gate.before_request("PUT", "/tags")
    assert metric_names == [METRIC_GENESYS_REQUESTS]


def test_requests_held_by_a_pause_go_one_interval_apart_not_all_at_its_end():
    # The herd: held requests that all went the instant the pause ended would earn the next 429.
    clock = Clock()
    budget = TokenBucketBudget(InMemoryBudgetStore(), RATE, clock=clock)
    slept: list[float] = []
    gate = BudgetGate(budget, max_inline_wait_seconds=3, sleep=slept.append)
    gate.rate_limited(1)
    for _ in range(4):
        gate.before_request("PATCH", "/x")
    assert slept == [1.5, 2.0, 2.5, 3.0]


def test_the_repeat_of_a_request_that_got_a_429_takes_a_fresh_slot_too():
    clock = Clock()
    budget = TokenBucketBudget(InMemoryBudgetStore(), RATE, clock=clock)
    slept: list[float] = []
    gate = BudgetGate(budget, max_inline_wait_seconds=3, sleep=slept.append)
    gate.rate_limited(1)
    clock.now += 1  # the client slept the Retry-After itself
    gate.before_request("PATCH", "/x")
    assert slept == [0.5]
    gate.before_request("PATCH", "/y")  # a later request, no 429 between: goes at once
    assert slept == [0.5]


def test_an_unreadable_budget_lets_the_request_go(metric_names):
    class Unreadable:
        def paused_for(self):
            raise ConnectionError("DynamoDB unreachable")

    gate = BudgetGate(Unreadable(), max_inline_wait_seconds=3, sleep=lambda s: pytest.fail("must not sleep"))
    gate.before_request("PATCH", "/x")  # a budget outage must not fail the write
    assert metric_names == [METRIC_GENESYS_REQUESTS]
