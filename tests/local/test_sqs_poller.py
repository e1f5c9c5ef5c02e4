"""Adapter 3: the SQS event source mapping, as the Lambda service runs it, over moto's SQS."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.sqs_poller import SqsEventSourcePoller, SqsMappingConfig, move_messages

# Fails the records whose body says so; reports them as batch item failures.
PARTIAL = """
import json
def handler(event, context):
    failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if json.loads(r["body"]).get("fail")]
    return {"batchItemFailures": failures}
"""
RECORDER = """
import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    return {"batchItemFailures": []}
"""
RAISES = """
def handler(event, context):
    raise RuntimeError("the whole batch fails")
"""


@pytest.fixture
def queues(aws):
    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    main_url = sqs.create_queue(
        QueueName="main",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    main_arn = sqs.get_queue_attributes(QueueUrl=main_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"main_url": main_url, "main_arn": main_arn, "dlq_url": dlq_url}


def _poller(aws, queues, function_arn, **mapping_args) -> SqsEventSourcePoller:
    lam = aws.client("lambda")
    uuid = lam.create_event_source_mapping(
        EventSourceArn=queues["main_arn"], FunctionName=function_arn, **mapping_args
    )["UUID"]
    config = SqsMappingConfig.from_mapping(lam.get_event_source_mapping(UUID=uuid), queues["main_url"])
    return SqsEventSourcePoller(config, aws.client("sqs"), lam, "us-east-1")


def _send(aws, queues, bodies):
    sqs = aws.client("sqs")
    for b in bodies:
        sqs.send_message(
            QueueUrl=queues["main_url"],
            MessageBody=json.dumps(b),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )


def _counts(aws, url):
    a = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_records_come_in_batches_of_batch_size_with_lambdas_sqs_event_shape(aws, make_function, queues, tmp_path):
    out = tmp_path / "events.jsonl"
    fn = make_function(RECORDER, env={"OUT": str(out)})
    poller = _poller(aws, queues, fn, BatchSize=10)

    # moto's own mapping does not fire on send: nothing is invoked until the poller polls
    _send(aws, queues, [{"n": i} for i in range(25)])
    assert not out.exists()

    results = poller.drain()

    assert [len(r.message_ids) for r in results] == [10, 10, 5]
    assert _counts(aws, queues["main_url"]) == (0, 0)
    record = json.loads(out.read_text().splitlines()[0])["Records"][0]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["eventSourceARN"] == queues["main_arn"] and record["eventSource"] == "aws:sqs"


def test_partial_batch_failures_delete_successes_and_leave_failures_until_visibility_expires(
    aws, make_function, queues
):
    fn = make_function(PARTIAL)
    poller = _poller(aws, queues, fn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    _send(aws, queues, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])

    [result] = poller.drain()

    assert len(result.deleted) == 2 and len(result.left) == 1
    # the failure is in flight: invisible for the queue's visibility timeout
    assert _counts(aws, queues["main_url"]) == (0, 1)
    assert poller.poll_once() is None
    # once it expires it comes back, received a second time
    poller.expire_in_flight()
    msgs = aws.client("sqs").receive_message(QueueUrl=queues["main_url"], MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    assert json.loads(msgs[0]["Body"]) == {"n": 1, "fail": True}
    assert msgs[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_function_error_or_an_invalid_response_leaves_the_whole_batch(aws, make_function, queues):
    poller = _poller(aws, queues, make_function(RAISES), FunctionResponseTypes=["ReportBatchItemFailures"])
    _send(aws, queues, [{"n": 0}, {"n": 1}])
    [result] = poller.drain()
    assert result.function_error == "Unhandled" and result.deleted == [] and len(result.left) == 2
    assert _counts(aws, queues["main_url"]) == (0, 2)


def test_an_unknown_item_identifier_fails_the_whole_batch(aws, make_function, queues):
    bogus = make_function('def handler(e, c):\n    return {"batchItemFailures": [{"itemIdentifier": "nope"}]}\n')
    poller = _poller(aws, queues, bogus, FunctionResponseTypes=["ReportBatchItemFailures"])
    _send(aws, queues, [{"n": 0}])
    [result] = poller.drain()
    assert result.function_error is None and result.deleted == []


def test_records_that_keep_failing_are_redriven_to_the_dlq_after_max_receive_count(aws, make_function, queues):
    # moto's SQS moves a message on ReceiveMessage once its receive count reached maxReceiveCount (2 here)
    poller = _poller(aws, queues, make_function(RAISES))
    _send(aws, queues, [{"n": 0}])

    for attempt in (1, 2):
        assert poller.poll_once() is not None, f"attempt {attempt}"
        poller.expire_in_flight()
    assert poller.poll_once() is None

    assert _counts(aws, queues["main_url"]) == (0, 0)
    dlq = aws.client("sqs").receive_message(QueueUrl=queues["dlq_url"])["Messages"]
    assert json.loads(dlq[0]["Body"]) == {"n": 0}


def test_the_batching_window_collects_records_that_arrive_within_it(aws, make_function, queues):
    poller = _poller(aws, queues, make_function(PARTIAL), BatchSize=5, MaximumBatchingWindowInSeconds=1)
    _send(aws, queues, [{"n": 0}, {"n": 1}])
    # The others arrive inside the window: right after the window's first receive (not after a wall-clock
    # delay, which a loaded machine can stretch past the window)
    receive, receives = poller._receive, []

    def receive_then_more_arrive(*args):
        got = receive(*args)
        receives.append(len(got))
        if len(receives) == 1:
            _send(aws, queues, [{"n": 2}, {"n": 3}, {"n": 4}])
        return got

    poller._receive = receive_then_more_arrive

    result = poller.poll_once(cut_window_when_empty=False)

    assert len(result.message_ids) == 5


def test_background_polling_honours_maximum_concurrency(aws, make_function, queues, tmp_path):
    # Each invocation holds its worker a while; the runtime counts invocations running at once
    fn = make_function(
        """
        import time
        def handler(event, context):
            time.sleep(0.3)
        """,
    )
    poller = _poller(aws, queues, fn, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2})
    assert poller.config.maximum_concurrency == 2
    _send(aws, queues, [{"n": i} for i in range(6)])

    poller.start()
    try:
        deadline = time.monotonic() + 20
        while _counts(aws, queues["main_url"]) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    assert _counts(aws, queues["main_url"]) == (0, 0)
    assert RUNTIME.concurrency.snapshot().peak[fn.rsplit(":", 1)[1]] == 2


def test_move_messages_is_the_local_start_message_move_task(aws, queues):
    sqs = aws.client("sqs")
    for n in range(12):
        sqs.send_message(QueueUrl=queues["dlq_url"], MessageBody=json.dumps({"n": n}))

    moved = move_messages(sqs, queues["dlq_url"], queues["main_url"])

    assert moved == 12
    assert _counts(aws, queues["dlq_url"]) == (0, 0)
    assert _counts(aws, queues["main_url"]) == (12, 0)


def test_a_stop_that_times_out_leaves_the_batch_in_progress_for_a_later_stop_to_wait_for(
    aws, make_function, queues, tmp_path
):
    # A shutdown that must see every batch finished (the second Ctrl-C's dropped list) may stop twice:
    # a quick try, then a wait. The second stop must still wait for the batch the first left running.
    release = tmp_path / "release"
    fn = make_function(
        """
        import os, time
        def handler(event, context):
            while not os.path.exists(os.environ["RELEASE"]):
                time.sleep(0.02)
            return {"batchItemFailures": []}
        """,
        env={"RELEASE": str(release)},
    )
    poller = _poller(aws, queues, fn, BatchSize=1)
    _send(aws, queues, [{"n": 0}])
    poller.start()
    deadline = time.monotonic() + 10
    while not poller.busy and time.monotonic() < deadline:
        time.sleep(0.01)

    poller.stop(timeout=0.1)
    assert poller.busy  # the batch goes on
    threading.Timer(0.3, release.touch).start()
    poller.stop(timeout=10)

    assert not poller.busy and _counts(aws, queues["main_url"]) == (0, 0)  # it finished, and its record is deleted


def test_an_invoke_that_fails_otherwise_leaves_the_whole_batch_for_a_fast_forward(aws, make_function, queues):
    # Given a mapping whose function has been deleted since
    function_arn = make_function(PARTIAL)
    poller = _poller(aws, queues, function_arn, FunctionResponseTypes=["ReportBatchItemFailures"])
    aws.client("lambda").delete_function(FunctionName=function_arn)
    _send(aws, queues, [{"n": 0}, {"n": 1}])
    # When the poller receives a batch and the invoke fails
    [result] = poller.drain()
    # Then the batch is left, unprocessed, and named as such; its records come back on a fast-forward
    assert result.invoke_error == "ResourceNotFoundException" and not result.throttled
    assert result.deleted == [] and len(result.left) == 2
    assert _counts(aws, queues["main_url"]) == (0, 2)
    assert poller.expire_in_flight() == 2
    assert _counts(aws, queues["main_url"]) == (2, 0)
