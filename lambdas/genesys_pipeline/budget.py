"""The Genesys request budget: one shared bucket per environment, whatever the number of containers.

Why: Genesys limits requests per token (300/min) and per org, and warns that working around a
limit with more clients "can inadvertently begin impacting your entire organization"
(reference/genesys.md). Every warm processor calling as soon as it is invoked made a burst
answer ~90% 429s. So every Genesys request of an environment spends from one budget:

* **Admission** (the dispatcher, ``reserve``): one conditional write per SQS batch schedules a
  start time ("slot") for each of the batch's events. An event whose slot is now starts; the
  others wait in the SQS queue (DelaySeconds), pre-paid (genesys_pipeline.dispatch).
* **Debt** (``spend``): requests admission did not schedule (a Process retry, the error
  logger's failure mark) are charged as they happen and never wait on the budget: a retry that
  waited on a saturated budget would burn the state machine's retry attempts and fail its
  execution. Their debt pushes the next admissions back instead.
* **Pause** (``pause``/``paused_until``): a 429 pauses the whole environment for its
  Retry-After. Admission schedules after it; requests check it (``BudgetGate``) and are not
  sent meanwhile.

The bucket is GCRA (the generic cell rate algorithm), which keeps one number instead of a
token count and a refill time: ``tat``, the theoretical arrival time. With emission interval
``T = 1/rate`` and tolerance ``tau = burst * T``, taking ``n`` tokens at ``now`` moves
``tat`` to ``max(tat, now) + n*T``; they conform at ``tat - tau``. An idle bucket thus lets
``burst`` requests go at once, then one every ``T``.

State is one item (``BudgetState``) updated with optimistic concurrency: a write is
conditional on the version it was computed from; on a conflict the store hands back the
current state and the computation is redone. The last state seen is cached, so a write
costs one call in the common case, not a read and a write.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from .errors import GenesysRateLimited
from .observability import logger, metrics
from .outcomes import (
    METRIC_BUDGET_CONFLICTS,
    METRIC_BUDGET_TOKENS_SPENT,
    METRIC_GENESYS_REQUESTS,
    METRIC_GENESYS_REQUESTS_HELD,
)

MAX_WRITE_ATTEMPTS = 8  # conflicts mean other containers just wrote; a few redos always suffice
# SQS DelaySeconds maximum: admission never schedules further ahead than this.
MAX_DEFERRAL_SECONDS = 900


@dataclass(frozen=True)
class BudgetState:
    tat: float = 0.0  # theoretical arrival time, epoch seconds
    paused_until: float = 0.0  # epoch seconds; 0 = not paused
    version: int = 0  # 0 = no item yet


@dataclass(frozen=True)
class BucketRate:
    requests_per_second: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.requests_per_second

    @property
    def tolerance(self) -> float:
        return self.burst * self.interval


def admission_rate(limit_per_second: float, burst: int, *, window_seconds: float, send_spread_seconds: float) -> float:
    """The rate admission schedules at, so that what reaches Genesys fits its window at ``limit_per_second``.

    Genesys counts requests over a window (per minute: "300 requests per minute per token"). A
    request reaches Genesys between 0 and ``send_spread_seconds`` after its slot: SQS rounds
    DelaySeconds up to whole seconds, the event source mapping's batching window gathers slots a
    second apart into one batch, then StartExecution, Step Functions and Lambda start it. So the
    requests inside any window come from slots spanning ``window + spread``, and GCRA admits at
    most ``rate x span + burst`` in a span. Solving ``rate x (window + spread) + burst <= limit x
    window`` gives the rate. Admitting at the limit itself leaves a window that is always full,
    where any request a little later than the one before it is over the limit (measured: 5% of
    requests answered 429 at exactly the limit, 0 at this rate).
    """
    capacity = limit_per_second * window_seconds - burst
    if capacity <= 0 or window_seconds <= 0 or send_spread_seconds < 0:
        raise ValueError(
            f"no admission rate: burst {burst} fills a {window_seconds:g} s window at {limit_per_second:g} requests/s"
        )
    return capacity / (window_seconds + send_spread_seconds)


def schedule(
    state: BudgetState, rate: BucketRate, *, events: int, tokens_per_event: int, now: float, horizon: float
) -> tuple[float, tuple[float, ...]]:
    """(new tat, slot per admitted event): the first events whose slot is within ``now + horizon``.

    An event's slot is the time its last token conforms, so every request it makes is covered.
    After a pause the bucket restarts at the rate without a burst: Genesys has just said its
    window is full.
    """
    base = max(state.tat, now)
    if state.paused_until:  # no effect once the pause is a tolerance in the past
        base = max(base, state.paused_until + rate.tolerance)
    slots: list[float] = []
    tat = base
    for _ in range(events):
        candidate = tat + tokens_per_event * rate.interval
        slot = max(now, candidate - rate.tolerance)
        if slot > now + horizon:
            break
        tat = candidate
        slots.append(slot)
    return tat, tuple(slots)


def charge(state: BudgetState, rate: BucketRate, *, tokens: int, now: float) -> float:
    """The tat after ``tokens`` requests made ``now`` without waiting (debt)."""
    return max(state.tat, now) + tokens * rate.interval


# ---------------------------------------------------------------------------- ports


class BudgetStore(Protocol):
    """Where the one state item lives (DynamoDB on AWS and locally; a dict in unit tests)."""

    def read(self, consistent: bool = True) -> BudgetState: ...

    def write_tat(self, expected: BudgetState, tat: float) -> BudgetState | None:
        """Set ``tat`` if the item is still at ``expected.version``; the new state, or None on a conflict."""
        ...

    def extend_pause(self, until: float) -> None:
        """Set ``paused_until`` to ``until`` unless it is already later; bumps the version."""
        ...


class RequestBudget(Protocol):
    """What the handlers use (genesys_pipeline.dispatch, processing, failures, BudgetGate)."""

    def reserve(self, events: int, tokens_per_event: int) -> tuple[float, ...]:
        """Slots (epoch seconds) for up to ``events`` events, in order; fewer when beyond the horizon."""
        ...

    def spend(self, tokens: int) -> None:
        """Charge ``tokens`` requests made now, without waiting."""
        ...

    def pause(self, retry_after: float) -> None:
        """A 429 said wait ``retry_after`` seconds: the whole environment waits."""
        ...

    def paused_for(self) -> float:
        """Seconds the environment remains paused (0 when not), from a short per-container cache."""
        ...

    def reschedule(self, tokens: int) -> float:
        """A fresh slot (epoch seconds) for a request a pause held back, charged to the budget."""
        ...

    def now(self) -> float: ...


class BudgetConflict(Exception):
    """The state kept changing under us for MAX_WRITE_ATTEMPTS writes."""


# ---------------------------------------------------------------------------- the budget


class TokenBucketBudget:
    """``RequestBudget`` over a ``BudgetStore``: GCRA, optimistic writes, a cached state."""

    def __init__(
        self,
        store: BudgetStore,
        rate: BucketRate,
        *,
        pause_cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        horizon: float = MAX_DEFERRAL_SECONDS,
    ):
        self._store = store
        self.rate = rate
        self._clock = clock
        self._horizon = horizon
        self._pause_cache_seconds = pause_cache_seconds
        self._lock = threading.Lock()
        self._state: BudgetState | None = None  # the last state seen (written or read)
        self._state_seen_at = -math.inf

    def now(self) -> float:
        return self._clock()

    def reserve(self, events: int, tokens_per_event: int) -> tuple[float, ...]:
        if events <= 0:
            return ()
        return self._update(
            lambda state, now: schedule(
                state, self.rate, events=events, tokens_per_event=tokens_per_event, now=now, horizon=self._horizon
            )
        )

    def reschedule(self, tokens: int) -> float:
        (slot,) = self._update(
            lambda state, now: schedule(state, self.rate, events=1, tokens_per_event=tokens, now=now, horizon=math.inf)
        )
        return slot

    def spend(self, tokens: int) -> None:
        if tokens <= 0:
            return
        self._update(lambda state, now: (charge(state, self.rate, tokens=tokens, now=now), ()))
        metrics.add_metric(name=METRIC_BUDGET_TOKENS_SPENT, unit=MetricUnit.Count, value=tokens)

    def pause(self, retry_after: float) -> None:
        until = self._clock() + max(0.0, retry_after)
        self._store.extend_pause(until)
        with self._lock:
            state = self._state or BudgetState()
            if until > state.paused_until:
                # Seen at once by this container; others see it within their cache age.
                self._state = BudgetState(state.tat, until, state.version)

    def paused_for(self) -> float:
        now = self._clock()
        with self._lock:
            state, fresh = self._state, now - self._state_seen_at < self._pause_cache_seconds
        if state is None or not fresh:
            state = self._store.read(consistent=False)  # a pause a second late is fine; half the read price
            with self._lock:
                self._state, self._state_seen_at = state, now
        return max(0.0, state.paused_until - now)

    def _update(self, compute: Callable[[BudgetState, float], tuple[float, tuple[float, ...]]]) -> tuple[float, ...]:
        with self._lock:
            state = self._state or BudgetState()
        for _ in range(MAX_WRITE_ATTEMPTS):
            now = self._clock()
            tat, slots = compute(state, now)
            written = self._store.write_tat(state, tat)
            if written is not None:
                with self._lock:
                    self._state, self._state_seen_at = written, now
                return slots
            metrics.add_metric(name=METRIC_BUDGET_CONFLICTS, unit=MetricUnit.Count, value=1)
            state = self._store.read()
        raise BudgetConflict(f"request budget: {MAX_WRITE_ATTEMPTS} conflicting writes in a row")


def spend_best_effort(budget: RequestBudget, tokens: int) -> None:
    """Charge requests that admission did not schedule; bookkeeping never fails a write."""
    try:
        budget.spend(tokens)
    except Exception as exc:  # noqa: BLE001 - the pause check and the 429 path still protect Genesys
        logger.warning(
            "could not charge the request budget", extra={"error_type": type(exc).__name__, "tokens": tokens}
        )


# ---------------------------------------------------------------------------- the gate in GenesysClient


class BudgetGate:
    """GenesysClient's hook (its ``RequestGate``): hold requests while the environment is paused.

    A held request, and the repeat of a request that got a 429, takes a fresh slot from the
    budget, which restarts at the rate after a pause. Without that, every held request would go
    the instant the pause ends: a herd that earns the next 429 (measured locally: two thirds of
    the requests answered 429 against a 1 s window). A slot within ``max_inline_wait_seconds``
    (the same bound as the client's own inline Retry-After waits) is slept out; a later one
    raises ``GenesysRateLimited`` without calling Genesys, and the state machine's jittered
    backoff takes over (its retry then goes as debt, never waiting on the budget).
    """

    def __init__(
        self, budget: RequestBudget, *, max_inline_wait_seconds: float, sleep: Callable[[float], None] = time.sleep
    ):
        self._budget = budget
        self._max_inline = max_inline_wait_seconds
        self._sleep = sleep
        self._after_429 = threading.local()  # the client's request loop runs on one thread per request

    def before_request(self, method: str, path: str) -> None:
        try:
            wait = self._wait_seconds()
        except Exception as exc:  # noqa: BLE001 - fail open: an unreadable budget must not fail the write
            logger.warning("could not read the request budget; sending", extra={"error_type": type(exc).__name__})
            wait = 0.0
        if wait > 0:
            metrics.add_metric(name=METRIC_GENESYS_REQUESTS_HELD, unit=MetricUnit.Count, value=1)
            if wait > self._max_inline:
                logger.info(
                    "Genesys request held: the environment is paused after a 429",
                    extra={"method": method, "path": path, "wait_seconds": round(wait, 3)},
                )
                raise GenesysRateLimited(
                    f"Genesys {method} {path} not sent: the environment is paused after a "
                    f"429; its next slot is in {wait:.1f}s",
                    retry_after=wait,
                )
            self._sleep(wait)
        metrics.add_metric(name=METRIC_GENESYS_REQUESTS, unit=MetricUnit.Count, value=1)

    def _wait_seconds(self) -> float:
        after_429 = getattr(self._after_429, "flag", False)
        self._after_429.flag = False
        if not after_429 and self._budget.paused_for() <= 0:
            return 0.0
        return max(0.0, self._budget.reschedule(1) - self._budget.now())

    def rate_limited(self, retry_after: float) -> None:
        self._after_429.flag = True
        try:
            self._budget.pause(retry_after)
        except Exception as exc:  # noqa: BLE001 - the 429 is raised whatever; sharing the pause is best effort
            logger.warning("could not share the 429's pause", extra={"error": type(exc).__name__})


# ---------------------------------------------------------------------------- adapters


class InMemoryBudgetStore:
    """A ``BudgetStore`` for tests and benchmarks: the same conditional semantics, in a dict."""

    def __init__(self) -> None:
        self._state = BudgetState()
        self._lock = threading.Lock()
        self.writes = 0
        self.reads = 0

    def read(self, consistent: bool = True) -> BudgetState:
        with self._lock:
            self.reads += 1
            return self._state

    def write_tat(self, expected: BudgetState, tat: float) -> BudgetState | None:
        with self._lock:
            self.writes += 1
            if self._state.version != expected.version:
                return None
            self._state = BudgetState(tat, self._state.paused_until, self._state.version + 1)
            return self._state

    def extend_pause(self, until: float) -> None:
        with self._lock:
            self.writes += 1
            if until > self._state.paused_until:
                self._state = BudgetState(self._state.tat, until, self._state.version + 1)


class DynamoDBBudgetStore:
    """The state item ``{id: <key>, tat: N, pausedUntil: N, version: N}`` in the request budget table."""

    def __init__(self, client: Any, table_name: str, key: str):
        self._client = client
        self._table = table_name
        self._key = {"id": {"S": key}}

    def read(self, consistent: bool = True) -> BudgetState:
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=consistent).get("Item")
        return _state_of(item)

    def write_tat(self, expected: BudgetState, tat: float) -> BudgetState | None:
        condition = "attribute_not_exists(id)" if expected.version == 0 else "version = :expected"
        values: dict[str, Any] = {":tat": {"N": _n(tat)}, ":one": {"N": "1"}}
        if expected.version:
            values[":expected"] = {"N": str(expected.version)}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET tat = :tat ADD version :one",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return None
        return _state_of(response.get("Attributes"))

    def extend_pause(self, until: float) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET pausedUntil = :until ADD version :one",
                ConditionExpression="attribute_not_exists(pausedUntil) OR pausedUntil < :until",
                ExpressionAttributeValues={":until": {"N": _n(until)}, ":one": {"N": "1"}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            pass  # a later pause is already there


def _n(value: float) -> str:
    return f"{value:.3f}"


def _state_of(item: dict[str, Any] | None) -> BudgetState:
    if not item:
        return BudgetState()

    def number(name: str) -> float:
        return float(item[name]["N"]) if name in item else 0.0

    return BudgetState(tat=number("tat"), paused_until=number("pausedUntil"), version=int(number("version")))


def dynamodb_client() -> Any:
    import boto3
    from botocore.config import Config

    # Small retries: admission fails open (genesys_pipeline.dispatch) rather than hold a batch.
    return boto3.client(
        "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
    )


def budget_from_settings(settings: Any, client: Any | None = None) -> TokenBucketBudget:
    """The DynamoDB-backed budget of ``settings`` (a ``BudgetSettings``)."""
    store = DynamoDBBudgetStore(client or dynamodb_client(), settings.table_name, settings.key)
    rate = admission_rate(
        settings.requests_per_second,
        settings.burst,
        window_seconds=settings.window_seconds,
        send_spread_seconds=settings.send_spread_seconds,
    )
    return TokenBucketBudget(store, BucketRate(rate, settings.burst), pause_cache_seconds=settings.pause_cache_seconds)
