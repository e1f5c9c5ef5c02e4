"""The events of a chaos run: the local run's generated mix (configured topics, duplicates, late, stale,
malformed, other-org and other-queue events), cut to N events, reordered, and sent in waves; plus SQS
redeliveries (the same message body, same EventBridge id, sent to the main queue again)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from gcpipe.envelopes import delivered
from gcpipe.local.ledger import TrackedEvent
from gcpipe.local.run.scenario import build_mix
from gcpipe.local.run.stack_config import StackConfig

WAVE_SIZE = 50
REDELIVERABLE = ("event", "duplicate", "late")  # valid events (a malformed one's outcome is found by its id)


@dataclass
class Waves:
    """The generated events, wave by wave, and how many redeliveries each later wave adds."""

    waves: list[list[TrackedEvent]]
    redeliveries: int  # copies of already delivered events, spread over the waves after the first


def generate(
    config: StackConfig, events: int, rng: random.Random, *, redelivery_share: float, wave_size: int = WAVE_SIZE
) -> Waves:
    redeliveries = int(events * redelivery_share) if events >= 20 else 0
    wanted = events - redeliveries
    mix: list[TrackedEvent] = []
    count = max(1, int(wanted / 1.25))
    while len(mix) < wanted:
        [phase] = build_mix(config, count, rng, faults=False)
        mix.extend(phase.events)
        count = max(1, wanted - len(mix))
    # Keep every kind the mix has: the extras (malformed, stale, other-org ...) are few, so cut the plain events.
    extras = [e for e in mix if e.kind != "event" and e.kind != "duplicate"]
    plain = [e for e in mix if e.kind in ("event", "duplicate")]
    chosen = (extras[: wanted // 3] + plain)[:wanted]
    rng.shuffle(chosen)  # reordering: duplicates and late events arrive anywhere in the stream
    for e in chosen:
        e.phase = "chaos"
    waves = [chosen[i : i + wave_size] for i in range(0, len(chosen), wave_size)] or [[]]
    return Waves(waves, redeliveries)


def redeliveries_of(
    sent: list[TrackedEvent], n: int, rng: random.Random, account: str, region: str
) -> list[TrackedEvent]:
    """``n`` SQS redeliveries of events already delivered: the body EventBridge delivered, its id unchanged,
    sent straight to the main queue (the dispatcher sees the same message again)."""
    candidates = [
        e for e in sent if e.sent and e.event_id and e.dedup_key and not e.rule_filtered and e.kind in REDELIVERABLE
    ]
    picked = rng.sample(candidates, min(n, len(candidates)))
    return [
        TrackedEvent(
            index=0,
            kind="redelivery",
            envelope=delivered(e.envelope, e.event_id or "", account, region),
            phase="chaos",
            route="queue",
        )
        for e in picked
    ]


__all__ = ["WAVE_SIZE", "Waves", "generate", "redeliveries_of"]
