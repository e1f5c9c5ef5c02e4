"""Adapter: SQS's message counts and retention check without walking the queue per message (sqs_queue)."""

from __future__ import annotations

import time

from gcpipe.local import moto_patches

COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible")


def _counts(sqs, url: str) -> dict[str, str]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {k: attributes[k] for k in COUNTS}


def test_the_counts_are_moto_s_own_with_the_adapters_installed(aws):
    # Given a queue with messages ready, delayed and in flight
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"ready-{i}")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)["Messages"]
    assert len(received) == 2
    # When they are counted with the adapters, and by moto alone
    adapted = _counts(sqs, url)
    moto_patches.remove()
    try:
        plain = _counts(sqs, url)
    finally:
        moto_patches.install()  # the fixture removes them again
    # Then both say 3 ready, 1 delayed, 2 not visible (the 2 in flight: moto counts a delayed one only as delayed)
    assert (
        adapted
        == plain
        == {
            "ApproximateNumberOfMessages": "3",
            "ApproximateNumberOfMessagesDelayed": "1",
            "ApproximateNumberOfMessagesNotVisible": "2",
        }
    )


def test_a_message_past_the_retention_period_is_not_received(aws):
    # Given a queue that keeps messages 60 s (SQS's minimum), and a message sent 61 s ago
    from moto.sqs.models import sqs_backends

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="new")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    [queue] = [q for q in sqs_backends["123456789012"]["us-east-1"].queues.values() if q.name == "retained"]
    old = next(m for m in queue._messages if m.body == "old")
    old.sent_timestamp = int((time.time() - 61) * 1000)
    # When both are received
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    # Then only the one within retention comes back (moto's check, without building the queue's attributes)
    assert bodies == ["new"]


def test_counting_a_queue_does_not_read_the_clock_per_message(aws, monkeypatch):
    # Given a queue of 50 messages, and moto's message clock counted (Message.visible / .delayed read it)
    import moto.sqs.models

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="long")["QueueUrl"]
    for i in range(50):
        sqs.send_message(QueueUrl=url, MessageBody=f"m-{i}")
    reads: list[int] = []
    clock = moto.sqs.models.unix_time_millis
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda *a: reads.append(1) or clock(*a))
    # When the queue is counted and sent to (SendMessage reads Queue.attributes)
    assert _counts(sqs, url)["ApproximateNumberOfMessages"] == "50"
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    # Then the messages' clock was not read per message (moto alone: about 4 reads per message per count)
    assert len(reads) < 50


def test_concurrent_receivers_never_get_the_same_message_and_every_delete_takes(aws):
    # Given 600 messages and 12 receivers that each delete what they got (the local pollers' threads)
    import collections
    import threading

    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="shared", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for start in range(0, 600, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m-{start + n}"} for n in range(10)]
        )
    received: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def receiver() -> None:
        client = aws.client("sqs")
        while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            with lock:
                received.update(m["MessageId"] for m in messages)
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )

    # When they receive at once
    threads = [threading.Thread(target=receiver) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Then each message was handed out once, and none is left in flight (moto alone: some handed out twice,
    # whose first delete did not take, so they would come back after the visibility timeout)
    assert len(received) == 600 and max(received.values()) == 1
    assert _counts(sqs, url) == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
