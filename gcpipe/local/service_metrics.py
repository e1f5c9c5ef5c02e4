"""What CloudWatch records for the AWS services themselves (``AWS/Lambda``, ``AWS/States``, ``AWS/SQS``), locally.

On AWS these metrics are not printed by the Lambdas: each service publishes its own. Locally the emulator
is the service, so it publishes them, as EMF lines (the format the Lambdas' own metrics use) in a file
beside ``lambdas.log``. ``gcpipe local dashboard`` reads both, so the stack's dashboard and its alarms
have data for every widget.

What is recorded, with the dimension CloudWatch uses:
- ``AWS/Lambda`` (FunctionName): Invocations, Errors, Duration (ms) per invocation that ran; Throttles
  per invoke refused for reserved concurrency (it did not run, so it is no invocation, as on AWS).
- ``AWS/States`` (StateMachineArn): ExecutionsStarted at start; ExecutionsSucceeded/Failed/TimedOut/
  Aborted and ExecutionTime (ms) at the end.
- ``AWS/SQS`` (QueueName), sampled every ``SAMPLE_SECONDS``: ApproximateNumberOfMessagesVisible, and
  ApproximateAgeOfOldestMessage, which moto does not report: here it is the age of the oldest message
  a poller received in the sample period (on AWS: of the oldest message on the queue; the same when the
  queue is drained in order, an underestimate while messages wait unreceived).

Recording is off (each call a no-op) unless a ``ServiceMetricsLog`` is open: the runner opens one per run.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from .run_files import open_keeping_previous

SAMPLE_SECONDS = 1.0
AWS_METRICS_LOG = "aws-metrics.log"  # in the run directory, beside lambdas.log
EXECUTION_END_METRICS = {
    "SUCCEEDED": "ExecutionsSucceeded",
    "FAILED": "ExecutionsFailed",
    "TIMED_OUT": "ExecutionsTimedOut",
    "ABORTED": "ExecutionsAborted",
}

_lock = threading.Lock()
_current: "ServiceMetricsLog | None" = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _put(
    namespace: str, dimension: tuple[str, str], values: dict[str, tuple[float, str]], timestamp_ms: int | None = None
) -> None:
    log = _current
    if log is not None:
        log.write(namespace, dimension, values, timestamp_ms)


# -- the services' recording points ------------------------------------------------------------------------


def lambda_invoked(function_name: str, duration_ms: float, error: bool) -> None:
    _put(
        "AWS/Lambda",
        ("FunctionName", function_name),
        {
            "Invocations": (1, "Count"),
            "Errors": (1 if error else 0, "Count"),
            "Duration": (duration_ms, "Milliseconds"),
        },
    )


def lambda_throttled(function_name: str) -> None:
    _put("AWS/Lambda", ("FunctionName", function_name), {"Throttles": (1, "Count")})


def execution_started(state_machine_arn: str) -> None:
    _put("AWS/States", ("StateMachineArn", state_machine_arn), {"ExecutionsStarted": (1, "Count")})


def execution_ended(state_machine_arn: str, status: str, duration_ms: float | None) -> None:
    name = EXECUTION_END_METRICS.get(status)
    if name is None:
        return
    values: dict[str, tuple[float, str]] = {name: (1, "Count")}
    if duration_ms is not None:
        values["ExecutionTime"] = (duration_ms, "Milliseconds")
    _put("AWS/States", ("StateMachineArn", state_machine_arn), values)


def messages_received(queue_name: str, sent_timestamps_ms: list[int]) -> None:
    """A poller received these messages: their age feeds the queue's ApproximateAgeOfOldestMessage."""
    log = _current
    if log is not None and sent_timestamps_ms:
        log.note_received(queue_name, min(sent_timestamps_ms))


# -- the log ----------------------------------------------------------------------------------------------


class ServiceMetricsLog:
    """Opens ``path`` (the previous run's kept, gcpipe.local.run_files) and records into it while open.

    ``sqs`` (a boto3 SQS client of the emulator) turns on the queue sampler: every queue, every second.
    """

    def __init__(self, path: Path, sqs: Any | None = None, sample_seconds: float = SAMPLE_SECONDS):
        self.path = Path(path)
        self._sqs = sqs
        self._sample_seconds = sample_seconds
        self._file: TextIO | None = None
        self._write_lock = threading.Lock()
        self._oldest_received: dict[str, int] = {}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def __enter__(self) -> "ServiceMetricsLog":
        global _current
        self._file = open_keeping_previous(self.path)
        with _lock:
            _current = self
        if self._sqs is not None:
            self._sampler = threading.Thread(target=self._sample_queues, name="aws-sqs-metrics", daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        global _current
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(self._sample_seconds * 5)
        if self._sqs is not None:
            self.sample_once()  # the queues as the run left them
        with _lock:
            if _current is self:
                _current = None
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def write(
        self,
        namespace: str,
        dimension: tuple[str, str],
        values: dict[str, tuple[float, str]],
        timestamp_ms: int | None = None,
    ) -> None:
        key, value = dimension
        record: dict[str, Any] = {
            "_aws": {
                "Timestamp": timestamp_ms or _now_ms(),
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [[key]],
                        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                    }
                ],
            },
            key: value,
            **{name: v for name, (v, _) in values.items()},
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._write_lock:
            if self._file is not None:
                self._file.write(line)

    def note_received(self, queue_name: str, sent_ms: int) -> None:
        with self._write_lock:
            seen = self._oldest_received.get(queue_name)
            self._oldest_received[queue_name] = sent_ms if seen is None else min(seen, sent_ms)

    def _sample_queues(self) -> None:
        while not self._stop.wait(self._sample_seconds):
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001 - the emulator stopping under the sampler ends sampling, not the run
                return

    def sample_once(self) -> None:
        assert self._sqs is not None
        now = _now_ms()
        with self._write_lock:
            oldest, self._oldest_received = self._oldest_received, {}
        for url in self._sqs.list_queues().get("QueueUrls", []):
            name = url.rsplit("/", 1)[-1]
            attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]
            values: dict[str, tuple[float, str]] = {
                "ApproximateNumberOfMessagesVisible": (int(attrs.get("ApproximateNumberOfMessages", 0)), "Count")
            }
            if name in oldest:
                values["ApproximateAgeOfOldestMessage"] = (max(0, (now - oldest[name]) // 1000), "Seconds")
            self.write("AWS/SQS", ("QueueName", name), values, now)


__all__ = [
    "AWS_METRICS_LOG",
    "EXECUTION_END_METRICS",
    "SAMPLE_SECONDS",
    "ServiceMetricsLog",
    "execution_ended",
    "execution_started",
    "lambda_invoked",
    "lambda_throttled",
    "messages_received",
]
