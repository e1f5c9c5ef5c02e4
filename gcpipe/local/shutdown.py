"""Stopping a kept-running local stack (``gcpipe local run --keep-running``) without losing events silently.

Locally nothing is durable: the queues, the executions and the DLQ live in
this process and go with it. So Ctrl-C does not just stop:

1. the first Ctrl-C (or SIGTERM) says how many accepted events are still queued
   or running, and drains them: the pollers keep going until the pipeline is idle;
2. a second one stops at once: the pollers are stopped, the running executions
   are stopped (StopExecution), and every event that had not finished is
   listed, by event id and dedup key, in ``dropped-<time>.jsonl`` in the run
   directory; the operator is told how many, and where.

An event counts once: a message still on the main queue whose execution had
already started is listed as running.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .ledger import peek_queue

if TYPE_CHECKING:
    from .pipeline import LocalPipeline

QUEUED, DELAYED, RUNNING = "main queue", "main queue, delayed by the request budget", "execution running"
IN_FLIGHT = "main queue, in flight (received and not deleted)"
IDLE_CHECK_SECONDS = 0.5
# A batch being dispatched is waited for, so that its StartExecutions and deletes are all seen below. It cannot
# run longer than the dispatcher's timeout on AWS (infra/constants.py DISPATCHER_TIMEOUT_SECONDS).
BATCH_FINISH_SECONDS = 60.0
FAST_FORWARD_AFTER_CHECKS = (
    4  # records a failed dispatch left in flight are made visible after this many idle-less checks
)


@dataclass(frozen=True)
class DroppedEvent:
    where: str  # QUEUED, DELAYED, IN_FLIGHT or RUNNING
    event_id: str | None
    dedup_key: str | None
    message_id: str | None = None
    execution_name: str | None = None

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class InFlight:
    """How many accepted events have not finished (counts only: cheap enough to print at once)."""

    queued: int  # on the main queue, visible or being dispatched
    running: int  # executions RUNNING

    @property
    def total(self) -> int:
        return self.queued + self.running


@dataclass
class ShutdownResult:
    drained: bool = False
    in_flight_at_stop: InFlight | None = None
    dropped: list[DroppedEvent] = field(default_factory=list)
    dropped_file: Path | None = None


class Shutdown:
    """Serves until Ctrl-C, then drains; a second Ctrl-C drops what is left, with its ids written down.

    ``pipeline`` is a started ``LocalPipeline``; ``stop_requested`` lets an in-process
    caller stop it like a first Ctrl-C.
    """

    def __init__(
        self,
        pipeline: LocalPipeline,
        run_dir: Path,
        say: Callable[[str], None],
        stop_requested: threading.Event | None = None,
    ):
        self.pipeline = pipeline
        self.run_dir = Path(run_dir)
        self.say = say
        self.first = stop_requested or threading.Event()
        self.second = threading.Event()
        self.result = ShutdownResult()

    # -- signals ------------------------------------------------------------------------------
    def _on_signal(self, *_: Any) -> None:
        if self.first.is_set():
            self.second.set()
        self.first.set()

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM count presses (SIGINT too: a shell may start us with it ignored)."""
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- what is left -------------------------------------------------------------------------
    def in_flight(self) -> InFlight:
        return count_in_flight(self.pipeline)

    # -- serving ------------------------------------------------------------------------------
    def serve(self) -> ShutdownResult:
        while not self.first.wait(IDLE_CHECK_SECONDS):
            pass
        left = self.in_flight()
        self.result.in_flight_at_stop = left
        if not left.total:
            self.say(
                "stopping: nothing queued or running. (Locally nothing is durable: the queues, executions "
                "and DLQ go with the stack.)"
            )
            self.result.drained = True
            return self.result
        self.say(
            f"stopping: {left.total} event(s) still queued or running ({left.queued} on the main queue, "
            f"{left.running} execution(s) running): draining them. Locally nothing is durable: whatever is not "
            "finished when the stack stops is lost (on AWS, SQS and Step Functions would keep it). "
            "Ctrl-C again to stop at once and drop them."
        )
        checks = 0
        while not self.second.is_set():
            if self.pipeline.wait_until_idle(timeout=IDLE_CHECK_SECONDS):
                self.result.drained = True
                self.say(f"drained: the {left.total} event(s) finished; nothing dropped.")
                return self.result
            checks += 1
            if checks % FAST_FORWARD_AFTER_CHECKS == 0:
                self.pipeline.expire_in_flight()  # records a failed dispatch left: retried now, not after the timeout
        return self.drop()

    def drop(self) -> ShutdownResult:
        """Stop at once; list (and write down) every event that had not finished."""
        # Nothing new is dispatched, and no batch is half done: between a receive and its delete, a batch's
        # events are on no list (not visible on the queue, and not all started yet).
        if not self.pipeline.stop_pollers(timeout=0.5):
            self.say("stopping at once: waiting for the dispatcher batch(es) in progress to finish...")
            if not self.pipeline.stop_pollers(timeout=BATCH_FINISH_SECONDS):
                self.say(
                    f"a dispatcher batch still runs after {BATCH_FINISH_SECONDS:.0f} s; "
                    "its events may be missing from the list below"
                )
        dropped: dict[str, DroppedEvent] = {}
        for execution in self.pipeline.running_executions():
            event = self._stop_execution(execution["executionArn"])
            if event is not None:
                dropped[event.dedup_key or execution["executionArn"]] = event
        parse = _parser()
        executions = self.pipeline.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:", 1) + ":"
        for where, message in _main_queue_messages(self.pipeline):
            envelope = _json(message.get("Body"))
            key = parse(envelope)
            if (key or message["MessageId"]) in dropped:
                continue  # already listed: its execution is running (stopped above), or another copy of the event
            if key is not None and self._dispatched(executions + key):
                continue  # its execution (named after the dedup key) had started and finished: not dropped
            event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
            dropped[key or message["MessageId"]] = DroppedEvent(where, event_id, key, message_id=message["MessageId"])
        self.result.dropped = list(dropped.values())
        self.result.dropped_file = self._write(self.result.dropped)
        self.say(
            f"stopped at once: {len(self.result.dropped)} accepted event(s) had not finished and were dropped "
            f"(locally nothing is durable); their event ids and dedup keys are in {self.result.dropped_file}. "
            "Send those events again to process them: re-sending is safe, duplicates are absorbed."
        )
        return self.result

    def _stop_execution(self, arn: str) -> DroppedEvent | None:
        """StopExecution on a running one; the event it carried, or None if it had finished meanwhile."""
        sfn = self.pipeline.client("stepfunctions")
        try:
            described = sfn.describe_execution(executionArn=arn)
            if described.get("status") != "RUNNING":
                return None
            sfn.stop_execution(
                executionArn=arn, error="LocalStackStopped", cause="gcpipe local run stopped at once (second Ctrl-C)"
            )
        except Exception:  # noqa: BLE001 - it finished meanwhile
            return None
        payload = _json(described.get("input"))
        key = payload.get("dedupKey") if isinstance(payload.get("dedupKey"), str) else None
        return DroppedEvent(RUNNING, payload.get("eventId"), key, execution_name=described.get("name"))

    def _dispatched(self, execution_arn: str) -> bool:
        """True when the execution exists and is no longer running (a running one is stopped and listed)."""
        try:
            status = self.pipeline.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
        except Exception:  # noqa: BLE001 - ExecutionDoesNotExist: never dispatched
            return False
        if status == "RUNNING":
            return self._stop_execution(execution_arn) is None
        return True

    def _write(self, events: list[DroppedEvent]) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = self.run_dir / f"dropped-{stamp}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for e in events:
                fh.write(json.dumps(e.record(), separators=(",", ":")) + "\n")
        return path


def count_in_flight(pipeline: LocalPipeline) -> InFlight:
    """Accepted events that have not finished: on the main queue (visible, in flight or delayed), or running."""
    state = pipeline.state()
    main = state.queue(pipeline.outputs["MainQueueUrl"])
    return InFlight(queued=main.visible + main.in_flight + main.delayed, running=state.running_executions)


def _main_queue_messages(pipeline: LocalPipeline) -> list[tuple[str, dict[str, Any]]]:
    """(where, message) for every message still on the main queue: visible, deferred by the request budget
    (DelaySeconds: shown to no receive until the delay ends) or in flight (received and not deleted, whoever
    holds it). Read from the emulator, which runs in this process, in one pass: a receive-based peek sees the
    visible ones only, and a message that changes state between two reads would be on neither list."""
    try:
        from moto.sqs.models import sqs_backends

        name = pipeline.outputs["MainQueueUrl"].rsplit("/", 1)[-1]
        queue = sqs_backends[pipeline.account_id][pipeline.region].queues[name]
        messages = list(queue._messages)
    except Exception:  # noqa: BLE001 - another emulator: the visible messages only
        return [(QUEUED, m) for m in peek_queue(pipeline.client("sqs"), pipeline.outputs["MainQueueUrl"])]
    return [
        (DELAYED if m.delayed else QUEUED if m.visible else IN_FLIGHT, {"MessageId": m.id, "Body": m.body})
        for m in messages
    ]


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _parser() -> Callable[[dict[str, Any]], str | None]:
    """The dispatcher's own parser: an envelope's dedup key, None when it is not a valid event."""
    from gcpipe.ops.validation import load_parser

    parse, _ = load_parser()

    def dedup_key(envelope: dict[str, Any]) -> str | None:
        try:
            return parse(envelope).dedup_key
        except Exception:  # noqa: BLE001 - an invalid event has no dedup key; listed by message id
            return None

    return dedup_key


__all__ = ["DroppedEvent", "InFlight", "Shutdown", "ShutdownResult", "count_in_flight"]
