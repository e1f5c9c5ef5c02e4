"""Ingestion: the partner bus (created or imported), the archive, and the rule's pattern against real events."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match
from moto.events.models import EventPattern

from .conftest import Synthesized, context_with, ENVIRONMENTS  # noqa: F401


def rule_pattern(s: Synthesized) -> dict:
    _, rule = s.one("AWS::Events::Rule", "IngestionRule")
    return rule["Properties"]["EventPattern"]


def matches(pattern: dict, event: dict) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


class TestRulePatternAgainstSampleEvents:
    def test_the_configured_queues_acd_end_matches(self, dev, sample_events):
        assert matches(rule_pattern(dev), sample_events["acd-end"])

    def test_customer_end_matches_without_a_queue(self, dev, sample_events):
        assert matches(rule_pattern(dev), sample_events["customer-end"])

    def test_acd_end_of_another_queue_does_not_match(self, dev, sample_events):
        event = sample_events["acd-end"]
        event["detail"]["eventBody"]["queueId"] = "00000000-0000-4000-8000-000000000000"
        assert not matches(rule_pattern(dev), event)

    def test_acd_end_without_a_queue_does_not_match(self, dev, sample_events):
        event = sample_events["acd-end"]
        del event["detail"]["eventBody"]["queueId"]
        assert not matches(rule_pattern(dev), event)

    def test_the_attributes_topic_never_matches(self, shipped, sample_events):
        event = sample_events["attributes"]
        event["source"] = f"{shipped.config.source_prefix}contact-center-events"
        assert not matches(rule_pattern(shipped), event)

    def test_another_orgs_event_does_not_match(self, dev, sample_events):
        event = sample_events["acd-end"]
        event["source"] = "aws.partner/genesys.com/cloud/0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f/contact-center-events"
        assert not matches(rule_pattern(dev), event)

    def test_prod_matches_its_own_queues(self, prod, sample_events):
        event = sample_events["acd-end"]
        event["source"] = prod.config.event_bus_name
        for queue in prod.config.queue_ids:
            event["detail"]["eventBody"]["queueId"] = queue
            assert matches(rule_pattern(prod), event)
        event["detail"]["eventBody"]["queueId"] = "a1b2c3d4-e5f6-4789-9123-4567890abcde"
        assert not matches(rule_pattern(prod), event)


def test_rule_targets_the_main_queue_with_its_own_dlq_and_retry_policy(shipped):
    main_id, _ = shipped.one("AWS::SQS::Queue", "MainQueue")
    dlq_id, _ = shipped.one("AWS::SQS::Queue", "RuleTargetDeadLetterQueue")
    shipped.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": rule_pattern(shipped),
            "Targets": [
                {
                    "Arn": {"Fn::GetAtt": [main_id, "Arn"]},
                    "Id": Match.any_value(),
                    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}},
                    "RetryPolicy": {
                        "MaximumEventAgeInSeconds": shipped.config.rule_target.maximum_event_age_seconds,
                        "MaximumRetryAttempts": shipped.config.rule_target.maximum_retry_attempts,
                    },
                }
            ],
        },
    )


def test_rule_target_dlq_lets_eventbridge_send_from_the_rules_only(dev):
    dlq_id, _ = dev.one("AWS::SQS::Queue", "RuleTargetDeadLetterQueue")
    rule_id, _ = dev.one("AWS::Events::Rule", "IngestionRule")
    dev.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_dev_creates_the_bus_from_the_partner_event_source(dev):
    name = dev.config.event_bus_name
    dev.template.has_resource_properties("AWS::Events::EventBus", {"Name": name, "EventSourceName": name})


def test_prod_imports_the_existing_bus_by_name(prod):
    prod.template.resource_count_is("AWS::Events::EventBus", 0)
    prod.template.has_resource_properties("AWS::Events::Rule", {"EventBusName": prod.config.event_bus_name})


def test_archive_on_the_bus_with_the_configured_retention(shipped):
    shipped.template.has_resource_properties(
        "AWS::Events::Archive",
        {
            "ArchiveName": f"{shipped.config.stack_name}-events",
            "RetentionDays": shipped.config.archive_retention_days,
            "EventPattern": {"source": [{"prefix": shipped.config.source_prefix}]},
        },
    )
