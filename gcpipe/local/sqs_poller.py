"""Lambda's SQS event source mapping, locally.

Gap closed (moto 5.2.5): moto's SQS→Lambda mapping runs inside
``send_message``: one receive of the just-sent queue, one invocation per
record, the whole receive deleted when all succeed, and a failure made visible
at once (visibility timeout 0), so it never reaches maxReceiveCount and never
dead-letters. It ignores MaximumBatchingWindowInSeconds, ReportBatchItemFailures
and MaximumConcurrency.

``SqsEventSourcePoller`` does what the Lambda service does for an SQS mapping:
- receives batches of up to BatchSize (several ReceiveMessage calls of up to
  10, within MaximumBatchingWindowInSeconds), with the queue's own visibility
  timeout;
- invokes the function synchronously with Lambda's SQS event (messageId,
  receiptHandle, body, attributes incl. ApproximateReceiveCount,
  messageAttributes in Lambda's camelCase, md5OfBody, eventSource,
  eventSourceARN, awsRegion);
- with ReportBatchItemFailures, deletes the records not listed in
  ``batchItemFailures`` and leaves the listed ones; an invalid response (an
  unknown or empty itemIdentifier) fails the whole batch, as on AWS; without
  it, a successful invocation deletes the whole batch;
- a function error leaves the whole batch; left records reappear when their
  visibility timeout expires;
- a throttled invoke (429 TooManyRequestsException: the function's reserved
  concurrency is in use) leaves the whole batch too, unprocessed: it returns
  to the queue after the visibility timeout, and that receive counted toward
  maxReceiveCount, as with Lambda's mapping (whose MaximumConcurrency, set
  at or below the reserved concurrency, normally prevents it). The invoke is
  made without SDK retries: the mapping, not the SDK, decides what a throttle
  does;
- an invoke that fails otherwise (the function deleted, the endpoint unreachable) leaves the whole batch
  too, as a throttle does (``BatchResult.invoke_error`` names the error);
- redrive to the DLQ is moto's own: ReceiveMessage moves a message whose
  receive count reached the queue's maxReceiveCount (tests/local verify that
  this still holds);
- at most MaximumConcurrency (ScalingConfig) concurrent invocations in
  background mode: one worker thread per unit of concurrency.

``create_event_source_mapping`` (applied by ``moto_patches``) stops moto's own mapping from firing: CreateEventSourceMapping
still records the mapping (so it can be listed and read, and this poller reads
its configuration from there), but it is no longer attached to the queue.

Tests drive it synchronously (``poll_once``/``drain``); the runner uses
``start``/``stop``. ``expire_in_flight`` fast-forwards the visibility timeout of
the records this poller left in flight, for tests that cannot wait for it.

``move_messages`` is the local equivalent of SQS ``StartMessageMoveTask``
(moto has none).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import service_metrics

LOG = logging.getLogger(__name__)

MAX_RECEIVE = 10  # SQS ReceiveMessage maximum
DEFAULT_MAXIMUM_CONCURRENCY = 5  # locally; AWS scales to 1000 unless ScalingConfig caps it


@dataclass(frozen=True)
class SqsMappingConfig:
    """The parts of an SQS event source mapping the poller honours."""

    function_arn: str
    queue_arn: str
    queue_url: str
    batch_size: int = 10
    maximum_batching_window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = DEFAULT_MAXIMUM_CONCURRENCY
    enabled: bool = True
    uuid: str | None = None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], queue_url: str) -> "SqsMappingConfig":
        """From a GetEventSourceMapping/ListEventSourceMappings item."""
        scaling = mapping.get("ScalingConfig") or {}
        return cls(
            function_arn=mapping["FunctionArn"],
            queue_arn=mapping["EventSourceArn"],
            queue_url=queue_url,
            batch_size=int(mapping.get("BatchSize") or 10),
            maximum_batching_window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            report_batch_item_failures="ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
            maximum_concurrency=int(scaling.get("MaximumConcurrency") or DEFAULT_MAXIMUM_CONCURRENCY),
            enabled=mapping.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
            uuid=mapping.get("UUID"),
        )


@dataclass
class BatchResult:
    message_ids: list[str]
    deleted: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    function_error: str | None = None
    response: Any = None
    throttled: bool = False  # the invoke got 429 TooManyRequestsException: the function did not run
    invoke_error: str | None = None  # the invoke itself failed otherwise (the error code): the function did not run


def _without_sdk_retries(lambda_client: Any) -> Any:
    """A Lambda client like ``lambda_client`` that makes each invoke once (the SDK would retry a 429)."""
    import boto3
    from botocore.config import Config

    meta = lambda_client.meta
    return boto3.client(
        "lambda",
        region_name=meta.region_name,
        endpoint_url=meta.endpoint_url,
        config=meta.config.merge(Config(retries={"total_max_attempts": 1})),
    )


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for ``messages`` as ReceiveMessage returned them."""
    records = []
    for m in messages:
        attrs = {k: v for k, v in (m.get("Attributes") or {}).items()}
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": attrs,
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": value.get("StringListValues", []),
                        "binaryListValues": value.get("BinaryListValues", []),
                        "dataType": value.get("DataType"),
                    }
                    for name, value in (m.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": m.get("MD5OfBody")
                or hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),  # SQS's MD5OfBody
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def _failed_ids(response: Any, batch_ids: set[str]) -> set[str] | None:
    """The ids a ReportBatchItemFailures response leaves; None when the response is invalid (whole batch fails)."""
    if response is None or response == {} or response == "":
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in batch_ids:
            return None
        ids.add(ident)
    return ids


class SqsEventSourcePoller:
    def __init__(self, config: SqsMappingConfig, sqs_client: Any, lambda_client: Any, region: str):
        self.config = config
        self._sqs = sqs_client
        self._lambda = _without_sdk_retries(lambda_client)
        self._region = region
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._left: dict[str, str] = {}  # messageId -> receipt handle of records left in flight
        self.results: list[BatchResult] = []

    # -- one batch ------------------------------------------------------------------------
    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        resp = self._sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=min(MAX_RECEIVE, count),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return resp.get("Messages", [])

    def _collect(self, wait_seconds: int, cut_window_when_empty: bool) -> list[dict[str, Any]]:
        batch = self._receive(self.config.batch_size, wait_seconds)
        if not batch:
            return batch
        deadline = time.monotonic() + self.config.maximum_batching_window_seconds
        while len(batch) < self.config.batch_size and time.monotonic() < deadline and not self._stop.is_set():
            more = self._receive(self.config.batch_size - len(batch), 0)
            if more:
                batch.extend(more)
            elif cut_window_when_empty:
                break
            else:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return batch

    def poll_once(self, wait_seconds: int = 0, cut_window_when_empty: bool = True) -> BatchResult | None:
        """Receive one batch and process it. None when there was nothing to receive.

        ``cut_window_when_empty`` ends the batching window early once the queue
        has nothing more to give (timing only: the batch holds what was there).
        """
        with self._busy_lock:
            self._busy += 1
        try:
            messages = self._collect(wait_seconds, cut_window_when_empty)
            if not messages:
                return None
            return self._process(messages)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _process(self, messages: list[dict[str, Any]]) -> BatchResult:
        service_metrics.messages_received(
            self.config.queue_url.rsplit("/", 1)[-1],
            [int(m["Attributes"]["SentTimestamp"]) for m in messages if "SentTimestamp" in m.get("Attributes", {})],
        )
        event = sqs_lambda_event(messages, self.config.queue_arn, self._region)
        ids = [m["MessageId"] for m in messages]
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        result = BatchResult(message_ids=ids)
        try:
            resp = self._lambda.invoke(
                FunctionName=self.config.function_arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        except self._lambda.exceptions.TooManyRequestsException:
            LOG.info(
                "%s throttled: %d records back to the queue after the visibility timeout",
                self.config.function_arn,
                len(ids),
            )
            result.throttled = True
            return self._left_unprocessed(result, handles)
        except (ClientError, BotoCoreError) as exc:
            # As the Lambda service's poller: the batch is not deleted and comes back after the visibility timeout
            result.invoke_error = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            LOG.warning(
                "invoking %s failed (%s): %d records back to the queue after the visibility timeout",
                self.config.function_arn,
                result.invoke_error,
                len(ids),
            )
            return self._left_unprocessed(result, handles)
        raw = resp["Payload"].read()
        try:
            result.response = json.loads(raw) if raw else None
        except ValueError:
            result.response = raw.decode(errors="replace")
        result.function_error = resp.get("FunctionError")

        if result.function_error:
            left = set(ids)
        elif self.config.report_batch_item_failures:
            failed = _failed_ids(result.response, set(ids))
            left = set(ids) if failed is None else failed
        else:
            left = set()
        result.deleted = [i for i in ids if i not in left]
        result.left = [i for i in ids if i in left]
        self._delete(result.deleted, handles)
        for i in result.left:
            self._left[i] = handles[i]
        for i in result.deleted:
            self._left.pop(i, None)
        self.results.append(result)
        return result

    def _left_unprocessed(self, result: BatchResult, handles: dict[str, str]) -> BatchResult:
        """The function did not run: the whole batch stays in flight, tracked for ``expire_in_flight``."""
        result.left = list(result.message_ids)
        self._left.update(handles)
        self.results.append(result)
        return result

    def _delete(self, ids: list[str], handles: dict[str, str]) -> None:
        for start in range(0, len(ids), MAX_RECEIVE):
            chunk = ids[start : start + MAX_RECEIVE]
            entries = [{"Id": str(n), "ReceiptHandle": handles[i]} for n, i in enumerate(chunk)]
            resp = self._sqs.delete_message_batch(QueueUrl=self.config.queue_url, Entries=entries)
            for failure in resp.get("Failed", []):
                LOG.warning("could not delete a processed record: %s", failure)

    # -- synchronous driving (tests) ------------------------------------------------------
    def drain(self, max_batches: int = 1000) -> list[BatchResult]:
        """Process batches until a receive returns nothing (records left in flight are not waited for)."""
        results = []
        for _ in range(max_batches):
            r = self.poll_once()
            if r is None:
                break
            results.append(r)
        return results

    def expire_in_flight(self) -> int:
        """Fast-forward the visibility timeout of the records this poller left: they are visible now."""
        count = 0
        for message_id, handle in list(self._left.items()):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self.config.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
                count += 1
            except Exception:  # noqa: BLE001 - already moved, deleted or received again
                pass
            self._left.pop(message_id, None)
        return count

    # -- background driving (runner) ------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._threads = [t for t in self._threads if t.is_alive()]  # a stopping one goes on: the flag is clear
        for n in range(len(self._threads), max(1, self.config.maximum_concurrency)):
            t = threading.Thread(target=self._run, name=f"sqs-esm-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.poll_once(wait_seconds=0, cut_window_when_empty=False) is None:
                    self._stop.wait(0.1)
            except Exception:  # the service keeps polling whatever happens
                if self._stop.is_set():
                    break
                LOG.exception("SQS poller for %s", self.config.queue_arn)
                self._stop.wait(0.5)

    def stop(self, timeout: float = 5.0) -> None:
        """No new receive; wait up to ``timeout`` (in all) for the batches being processed to finish."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]  # still finishing a batch: a later stop waits

    @property
    def busy(self) -> bool:
        """A batch is being received or processed right now."""
        return self._busy > 0


def move_messages(sqs_client: Any, source_url: str, destination_url: str, max_messages: int | None = None) -> int:
    """Local StartMessageMoveTask: receive from ``source_url``, send to ``destination_url``,
    delete from the source only after the send is confirmed. Returns how many moved."""
    moved = 0
    while max_messages is None or moved < max_messages:
        want = MAX_RECEIVE if max_messages is None else min(MAX_RECEIVE, max_messages - moved)
        resp = sqs_client.receive_message(
            QueueUrl=source_url, MaxNumberOfMessages=want, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        messages = resp.get("Messages", [])
        if not messages:
            break
        for m in messages:
            kwargs: dict[str, Any] = {"QueueUrl": destination_url, "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                kwargs["MessageAttributes"] = m["MessageAttributes"]
            sent = sqs_client.send_message(**kwargs)
            if not sent.get("MessageId"):
                raise RuntimeError(f"send to {destination_url} not confirmed; {m['MessageId']} left in the source")
            sqs_client.delete_message(QueueUrl=source_url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return moved


def create_event_source_mapping(original: Any) -> Any:
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original(self, spec)
        from moto.sqs.models import sqs_backends

        # Recorded, but detached from the queue: the poller, not send_message, delivers.
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.queue_arn == esm.event_source_arn:
                queue.lambda_event_source_mappings.pop(esm.function_arn, None)
        return esm

    return create_event_source_mapping
