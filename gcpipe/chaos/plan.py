"""The seeded fault schedule of a chaos run: the same seed gives the same schedule.

Genesys faults are switched on in the simulator per traffic wave (``WaveFaults``); AWS faults are rules the
Lambda workers install (``gcpipe.local.faults``, written to a plan file); Lambda throttles are a
probability per function (``throttles``); delivery faults (redeliveries, duplicates, reordering) shape the
traffic (``traffic``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Genesys faults, switched on in the simulator at the start of a wave.
GENESYS_KINDS = (
    "genesys-429-storm",
    "genesys-5xx-burst",
    "genesys-read-timeout",
    "genesys-connection-reset",
    "genesys-token-5xx",
    "genesys-token-revoked",
)
HANG_SECONDS = 3.0  # over the Genesys client's read timeout in a chaos run (2 s): the request times out
STORM_SECONDS = 1.5


@dataclass(frozen=True)
class GenesysFault:
    kind: str
    count: int = 1  # requests it applies to (a storm: its requests per second)
    retry_after: int | None = None
    status: int = 503


@dataclass(frozen=True)
class WaveFaults:
    """The Genesys faults switched on when one wave of traffic is sent."""

    wave: int
    faults: tuple[GenesysFault, ...]


def aws_rules(rate: float) -> list[dict[str, Any]]:
    """The AWS fault rules of ``gcpipe.local.faults`` (their ``kind`` names the fault in the report).

    ``rate`` is the probability that one matching call fails; crashes and timeouts are capped over the run,
    as they cost a function instance (and a timeout its whole timeout)."""
    idem = {
        "handler": "processor",
        "service": "dynamodb",
        "table_env": "IDEMPOTENCY_TABLE",
        "operations": ["PutItem", "UpdateItem", "GetItem", "DeleteItem"],
    }
    secret = {"handler": "processor", "service": "secretsmanager", "operations": ["GetSecretValue"]}
    return [
        {
            "kind": "idempotency-throttle",
            **idem,
            "probability": rate,
            "code": "ProvisionedThroughputExceededException",
            "status": 400,
        },
        {"kind": "idempotency-5xx", **idem, "probability": rate, "code": "InternalServerError", "status": 500},
        {"kind": "idempotency-connection-error", **idem, "probability": rate / 2, "action": "connect"},
        {"kind": "secrets-throttle", **secret, "probability": rate * 4, "code": "ThrottlingException", "status": 400},
        {"kind": "secrets-5xx", **secret, "probability": rate * 4, "code": "InternalServiceError", "status": 500},
        {
            "kind": "start-execution-throttle",
            "handler": "dispatcher",
            "service": "stepfunctions",
            "operations": ["StartExecution"],
            "probability": rate,
            "code": "ThrottlingException",
            "status": 400,
        },
        {
            "kind": "dlq-send-failed",
            "handler": "dispatcher",
            "service": "sqs",
            "queue_env": "*DLQ*",
            "operations": ["SendMessage", "SendMessageBatch"],
            "probability": 0.25,
            "code": "InternalError",
            "status": 500,
        },
        {
            "kind": "dispatcher-crash-mid-batch",
            "handler": "dispatcher",
            "service": "stepfunctions",
            "operations": ["StartExecution"],
            "after": 1,
            "probability": rate,
            "action": "crash",
            "limit": 3,
        },
        # The completion of the idempotency record: the Genesys write has landed, the processor then hangs
        # until its timeout kills it.
        {
            "kind": "processor-timeout-after-write",
            "handler": "processor",
            "service": "dynamodb",
            "table_env": "IDEMPOTENCY_TABLE",
            "operations": ["UpdateItem"],
            "probability": rate,
            "action": "hang",
            "limit": 2,
        },
    ]


@dataclass
class ChaosPlan:
    """Everything the seed decides."""

    seed: int
    waves: list[WaveFaults]
    aws: list[dict[str, Any]]
    throttle_probability: float
    redelivery_share: float
    processor_timeout_seconds: int
    extra: dict[str, Any] = field(default_factory=dict)

    def write_worker_plan(self, directory: Path) -> tuple[Path, Path]:
        """The plan file the workers read (``GCPIPE_FAULT_PLAN``) and the log they append each fired fault to."""
        directory.mkdir(parents=True, exist_ok=True)
        tokens = directory / "tokens"
        tokens.mkdir(exist_ok=True)
        for old in tokens.iterdir():
            old.unlink()
        log = directory / "faults.log"
        log.write_text("", encoding="utf-8")
        path = directory / "plan.json"
        path.write_text(
            json.dumps({"seed": self.seed, "log": str(log), "tokens": str(tokens), "rules": self.aws}, indent=2),
            encoding="utf-8",
        )
        return path, log


def make_plan(seed: int, waves: int, *, aws_rate: float = 0.02) -> ChaosPlan:
    """The schedule for ``waves`` waves of traffic: every kind comes at least once, in the first waves (several
    to a wave when there are fewer waves than kinds); any wave may get a second, random one."""
    rng = random.Random(seed)
    kinds = list(GENESYS_KINDS)
    rng.shuffle(kinds)
    schedule: list[WaveFaults] = []
    for wave in range(waves):
        chosen = kinds[wave::waves]
        while len(chosen) < 2 and rng.random() < 0.5:
            chosen.append(rng.choice(GENESYS_KINDS))
        schedule.append(WaveFaults(wave, tuple(_genesys_fault(kind, rng) for kind in chosen)))
    return ChaosPlan(
        seed=seed,
        waves=schedule,
        aws=aws_rules(aws_rate),
        throttle_probability=aws_rate,
        redelivery_share=0.03,
        processor_timeout_seconds=10,
    )


def _genesys_fault(kind: str, rng: random.Random) -> GenesysFault:
    if kind == "genesys-429-storm":
        return GenesysFault(kind, count=rng.choice((2, 3, 5)), retry_after=rng.randint(1, 5))
    if kind == "genesys-5xx-burst":
        return GenesysFault(kind, count=rng.randint(1, 4), status=rng.choice((500, 502, 503, 504)))
    if kind == "genesys-read-timeout":
        return GenesysFault(kind, count=rng.randint(1, 2))
    if kind == "genesys-connection-reset":
        return GenesysFault(kind, count=rng.randint(1, 3))
    if kind == "genesys-token-5xx":
        return GenesysFault(kind, count=rng.randint(1, 2), status=rng.choice((500, 503)))
    return GenesysFault(kind)  # genesys-token-revoked


__all__ = [
    "ChaosPlan",
    "GENESYS_KINDS",
    "GenesysFault",
    "HANG_SECONDS",
    "STORM_SECONDS",
    "WaveFaults",
    "aws_rules",
    "make_plan",
]
