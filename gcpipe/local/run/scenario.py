"""The demo's traffic, in phases: a 5xx burst within the retry budget, one event whose 5xx burst is beyond
it, the bulk mix, and a 429 storm. Each phase switches its fault on in the simulator, and off again."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from ... import traffic as gen
from ..ledger import TrackedEvent
from .stack_config import StackConfig

if TYPE_CHECKING:
    from gcpipe.simulator import GenesysSimulator

SimulatorStep = Callable[["GenesysSimulator"], None]


def _no_step(sim: GenesysSimulator) -> None:
    return None


@dataclass
class Phase:
    name: str
    title: str
    events: list[TrackedEvent]
    before: SimulatorStep = _no_step  # switch a fault on
    during: SimulatorStep = _no_step  # after sending: keep the fault on, then off
    after: SimulatorStep = _no_step


def _tracked(kind: str, envelope: dict[str, Any], phase: str, route: str = "bus") -> TrackedEvent:
    return TrackedEvent(index=0, kind=kind, envelope=envelope, phase=phase, route=route)


def build_mix(config: StackConfig, count: int, rng: random.Random, *, faults: bool = True) -> list[Phase]:
    """The phases of a generated run; ``faults=False`` is the mix alone."""
    shorts = [gen.short_topic(t) for t in config.topics] or list(gen.DEFAULT_TOPICS)
    queues = list(config.queue_ids) or [gen.SAMPLE_QUEUE_ID]
    source = config.bus_name
    now = datetime.now(timezone.utc)

    def fresh(topic: str | None = None, **kw: Any) -> dict[str, Any]:
        topic = topic or shorts[rng.randrange(len(shorts))]
        at = now - timedelta(seconds=rng.uniform(1, 300))
        return gen.make_event(
            topic,
            at=at,
            delivered_at=now,
            queue_id=kw.pop("queue_id", rng.choice(queues)),
            source=source,
            rng=rng,
            **kw,
        )

    main: list[TrackedEvent] = []
    valid = [fresh(shorts[i % len(shorts)]) for i in range(max(1, count))]
    main += [_tracked("event", e, "main") for e in valid]
    # The same event three times (Genesys delivers at least once): two redeliveries of a few.
    for e in valid[: max(1, count // 8)]:
        main += [_tracked("duplicate", gen.duplicate(e, rng=rng), "main") for _ in range(2)]
    # Other topics, and acd.end for a queue outside the filter: the rule keeps them out.
    for topic in ("attributes", "acd.start", "user.end"):
        if gen.topic_template(topic) not in config.topics:
            main.append(_tracked("other-topic", fresh(topic), "main"))
    if config.queue_ids:
        for _ in range(2):
            main.append(_tracked("other-queue", fresh("acd.end", queue_id=gen.new_id(rng)), "main"))
    # Late: 3 days late is still applied (Genesys retries for 4 days); older than the max age is stale.
    within = timedelta(days=3) if config.max_age_seconds > 3 * 86400 else timedelta(seconds=config.max_age_seconds // 2)
    for _ in range(2):
        main.append(_tracked("late", gen.late(fresh(), by=within), "main"))
        main.append(_tracked("stale", gen.late(fresh(), by=timedelta(seconds=config.max_age_seconds + 86400)), "main"))
    # Malformed (bad JSON cannot cross EventBridge): missing fields, wrong types, unsupported version, wrong org.
    acd = "acd.end" if "acd.end" in shorts else shorts[0]
    main.append(_tracked("missing-field", gen.missing_field(fresh(acd)), "main"))
    main.append(
        _tracked("missing-field", gen.missing_field(fresh(acd), ("detail", "metadata", "CorrelationId")), "main")
    )
    main.append(_tracked("wrong-type", gen.wrong_type(fresh(acd)), "main"))
    main.append(_tracked("unsupported-version", gen.unsupported_version(fresh(acd)), "main"))
    main.append(_tracked("wrong-org", gen.wrong_org(fresh(acd), rng=rng), "main", route="queue"))
    rng.shuffle(main)
    if not faults:
        return [Phase("main", "the mix", main)]

    # The 5xx bursts first, the storm last: the storm's retries are charged to the request budget as debt,
    # and at the compressed retry time (--retry-time-scale) the state machine retries several times as
    # often as on AWS while the 429 pause lasts, so a phase after the storm waited ~15 s of real time for
    # that debt. (The mix just before the storm is as in the original order: mix, then storm.)
    burst = [_tracked("event", fresh(), "burst") for _ in range(max(3, count // 4))]
    within_budget = max(0, min(3, config.unavailable_attempts - 1))
    phases = [
        Phase(
            "burst",
            f"a 5xx burst within the retry budget ({within_budget} x 503)",
            burst,
            lambda sim: sim.fail_next(within_budget, status=503),
        )
    ]
    beyond = [_tracked("event", fresh(), "outage")]
    phases.append(
        Phase(
            "outage",
            f"a 5xx burst beyond the retry budget ({config.unavailable_attempts} x 503 for one event)",
            beyond,
            lambda sim: sim.fail_next(config.unavailable_attempts, status=503),
        )
    )
    phases.append(Phase("main", "the mix", main))

    storm = [_tracked("event", fresh(), "storm") for _ in range(max(4, count // 3))]

    def storm_on(sim: GenesysSimulator) -> None:
        # Retry-After above the processor's inline limit: the state machine's backoff takes over.
        sim.set_rate_limit(2, retry_after=5)

    def storm_hold(sim: GenesysSimulator) -> None:
        time.sleep(1.5)
        sim.set_rate_limit(None)

    phases.append(
        Phase("storm", "a Genesys 429 storm (rate limit 2/s, Retry-After 5 s, for 1.5 s)", storm, storm_on, storm_hold)
    )
    return phases


__all__ = ["Phase", "build_mix"]
