"""Queues: redrive, the visibility-timeout rule, encryption and TLS."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra import constants as C


def test_main_queue_redrives_to_its_dlq_after_max_receive_count(shipped):
    dlq_id, _ = shipped.one("AWS::SQS::Queue", "QueuesDeadLetterQueue")
    _, main = shipped.one("AWS::SQS::Queue", "MainQueue")
    assert main["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": shipped.config.retries.max_receive_count,
    }


def test_visibility_timeout_is_at_least_six_times_the_dispatcher_timeout(shipped):
    _, main = shipped.one("AWS::SQS::Queue", "MainQueue")
    dispatcher_timeout = shipped.function("Dispatcher")["Timeout"]
    assert main["Properties"]["VisibilityTimeout"] >= 6 * dispatcher_timeout


def test_dlqs_keep_messages_14_days(shipped):
    for name in ("QueuesDeadLetterQueue", "RuleTargetDeadLetterQueue"):
        _, q = shipped.one("AWS::SQS::Queue", name)
        assert q["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_is_encrypted_and_refuses_plain_http(shipped):
    queues = shipped.resources("AWS::SQS::Queue")
    assert len(queues) == 3
    for qid, q in queues.items():
        assert q["Properties"].get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in q["Properties"], qid
        shipped.template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": qid}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                    )
                },
            },
        )


def test_prod_retains_queues_and_dev_does_not(dev, prod):
    for s, policy in ((dev, "Delete"), (prod, "Retain")):
        for qid, q in s.resources("AWS::SQS::Queue").items():
            assert q.get("DeletionPolicy") == policy, (s.config.name, qid)
    assert C.VISIBILITY_TIMEOUT_FACTOR >= 6
