"""Adapter 2 (+ Lambda targets, TestEventPattern): EventBridge as the pipeline uses it."""

from __future__ import annotations

import json

import pytest

from gcpipe.local.eventbridge import create_partner_bus, event_pattern_matches
from gcpipe.local.lambda_runtime import RUNTIME
from tests.local.conftest import ACCOUNT

PARTNER_SOURCE = "aws.partner/genesys.com/cloud/6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/contact-center-events"
PATTERN = {
    "source": [{"prefix": "aws.partner/genesys.com"}],
    "detail-type": ["v2.detail.events.conversation.{id}.acd.end"],
}


@pytest.fixture
def partner_bus_to_queue(aws):
    events, sqs = aws.client("events"), aws.client("sqs")
    bus_arn = create_partner_bus(events, PARTNER_SOURCE, ACCOUNT)
    queue_url = sqs.create_queue(QueueName="main")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # by ARN, as CloudFormation passes it
    events.put_rule(Name="genesys", EventBusName=bus_arn, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule="genesys", EventBusName=PARTNER_SOURCE, Targets=[{"Id": "q", "Arn": queue_arn}])
    return bus_arn, queue_url


def _bodies(sqs, queue_url):
    msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def test_a_partner_bus_takes_rules_and_routes_partner_events_with_full_envelopes(
    aws, partner_bus_to_queue, sample_events
):
    # Given the partner bus with a rule to the queue
    bus_arn, queue_url = partner_bus_to_queue
    assert bus_arn.endswith(f":event-bus/{PARTNER_SOURCE}")
    sample = sample_events["acd-end"]

    # When Genesys puts an event (PutPartnerEvents) and the rule matches
    resp = aws.client("events").put_partner_events(
        Entries=[
            {"Source": PARTNER_SOURCE, "DetailType": sample["detail-type"], "Detail": json.dumps(sample["detail"])}
        ]
    )

    # Then the queue receives AWS's envelope, account included, in AWS's key order
    assert resp["FailedEntryCount"] == 0 and resp["Entries"][0]["EventId"]
    [body] = _bodies(aws.client("sqs"), queue_url)
    assert list(body) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert body["account"] == ACCOUNT
    assert body["source"] == PARTNER_SOURCE
    assert body["id"] == resp["Entries"][0]["EventId"]
    assert body["detail"] == sample["detail"]
    assert body["time"].endswith("Z")


def test_put_events_on_the_partner_bus_by_name_and_non_matching_events_are_not_routed(
    aws, partner_bus_to_queue, sample_events
):
    _, queue_url = partner_bus_to_queue
    events = aws.client("events")
    sample = sample_events["attributes"]

    events.put_events(
        Entries=[
            {
                "EventBusName": PARTNER_SOURCE,
                "Source": PARTNER_SOURCE,
                "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]),
            }
        ]
    )
    assert _bodies(aws.client("sqs"), queue_url) == []

    acd = sample_events["acd-end"]
    events.put_events(
        Entries=[
            {
                "EventBusName": PARTNER_SOURCE,
                "Source": PARTNER_SOURCE,
                "DetailType": acd["detail-type"],
                "Detail": json.dumps(acd["detail"]),
            }
        ]
    )
    assert [b["detail-type"] for b in _bodies(aws.client("sqs"), queue_url)] == [acd["detail-type"]]


def test_a_lambda_target_is_invoked_asynchronously_with_the_event(aws, make_function, tmp_path):
    # Given a rule on the default bus whose target is a Lambda function
    out = tmp_path / "event.json"
    fn_arn = make_function(
        """
        import json, os
        def handler(event, context):
            open(os.environ["OUT"], "w").write(json.dumps(event))
        """,
        env={"OUT": str(out)},
    )
    events = aws.client("events")
    events.put_rule(
        Name="status", EventPattern=json.dumps({"source": ["aws.states"], "detail": {"status": ["FAILED"]}})
    )
    events.put_targets(Rule="status", Targets=[{"Id": "logger", "Arn": fn_arn}])

    # When a matching and a non-matching event are put
    for status in ("SUCCEEDED", "FAILED"):
        events.put_events(
            Entries=[
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps({"status": status}),
                }
            ]
        )
    assert RUNTIME.wait_for_async(5)

    # Then the function ran once, with the matching envelope
    event = json.loads(out.read_text())
    assert event["detail"] == {"status": "FAILED"}
    assert event["account"] == ACCOUNT
    assert [i["function"] for i in RUNTIME.invocations if i["function"] == fn_arn.split(":")[-1]] == [
        fn_arn.split(":")[-1]
    ]


def test_event_pattern_matching_uses_moto_matcher_and_the_api_answers(aws, sample_events):
    sample = sample_events["acd-end"]
    assert event_pattern_matches(PATTERN, sample) is True
    assert event_pattern_matches(PATTERN, sample_events["attributes"]) is False
    queue_filter = {"detail": {"eventBody": {"queueId": ["a1b2c3d4-e5f6-4789-9123-4567890abcde"]}}}
    assert event_pattern_matches(queue_filter, sample) is True

    resp = aws.client("events").test_event_pattern(EventPattern=json.dumps(PATTERN), Event=json.dumps(sample))
    assert resp["Result"] is True
