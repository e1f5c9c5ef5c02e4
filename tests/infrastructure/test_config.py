"""Config: cdk.json environments parse, and each bad value fails with one line naming the key."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from infra import constants as C
from infra.config import ConfigError, defaults, load, merged, parse_environment, resolved, rule_event_pattern

from .conftest import CDK_CONTEXT, ENVIRONMENTS, ROOT

ACD_END = "v2.detail.events.conversation.{id}.acd.end"
CUSTOMER_END = "v2.detail.events.conversation.{id}.customer.end"
ATTRIBUTES = "v2.detail.events.conversation.{id}.attributes"


def env_raw(name: str = "prod") -> dict:
    """The environment as load() sees it: its extends chain and the code defaults merged in."""
    return copy.deepcopy(merged(defaults(name), resolved(name, CDK_CONTEXT[C.CONTEXT_ENVIRONMENTS])))


def parse_with(change, name: str = "prod"):
    raw = env_raw(name)
    change(raw)
    return parse_environment(name, raw)


def test_shipped_environments_include_dev_and_prod():
    assert {"dev", "prod"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_shipped_environment_parses(env):
    config = load(CDK_CONTEXT.get, env)
    assert config.stack_name == f"GenesysEvents-{env}"


def test_dev_is_the_default_and_matches_the_sample_events():
    config = load({k: v for k, v in CDK_CONTEXT.items() if k != "env"}.get)
    assert config.name == "dev"
    assert config.genesys_org_id == "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert config.event_bus_name == (
        "aws.partner/genesys.com/cloud/6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/contact-center-events"
    )
    assert config.queue_ids == ("a1b2c3d4-e5f6-4789-9123-4567890abcde",)
    assert ACD_END in config.topics and CUSTOMER_END in config.topics
    assert (config.region, config.genesys_domain) == ("us-east-1", "mypurecloud.com")


def _set(key, value):
    def change(raw):
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value

    return change


def _delete(key):
    def change(raw):
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        del node[last]

    return change


P = "cdk.json context environments.prod"
BAD = [
    (
        "queue id not a UUID",
        _set("queueIds", ["3f2e1d0c-9b8a-4765-8432-10fedcba9876", "abc"]),
        f"{P}.queueIds[1]: 'abc' is not a UUID; expected 8-4-4-4-12 hex digits",
    ),
    (
        "attributes topic (feedback loop)",
        _set("topics", [ACD_END, ATTRIBUTES]),
        f"{P}.topics[1]: '{ATTRIBUTES}' would route the processor's own attribute writes back into it (feedback loop)",
    ),
    ("secret name unset", _set("secretName", None), f"{P}.secretName: missing; expected a Secrets Manager secret name"),
    (
        "bus name not a partner source",
        _set("eventBus.name", "my-bus"),
        f"{P}.eventBus.name: 'my-bus' is not a partner event source name matching aws\\.partner",
    ),
    (
        "bus name of another org",
        _set("eventBus.name", "aws.partner/genesys.com/cloud/6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/x"),
        f"{P}.eventBus.name: 'aws.partner/genesys.com/cloud/6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/x' names org",
    ),
    (
        "non-Genesys partner source",
        _set("eventBus.name", "aws.partner/example.com/123/x"),
        f"{P}.eventBus.name: 'aws.partner/example.com/123/x' is not a Genesys partner source; expected "
        "aws.partner/genesys.com/cloud/<orgId>/",
    ),
    (
        "bus mode",
        _set("eventBus.mode", "adopt"),
        f"{P}.eventBus.mode: 'adopt' is not allowed; expected one of create, import",
    ),
    ("org id", _set("genesysOrgId", "org-1"), f"{P}.genesysOrgId: 'org-1' is not a UUID"),
    (
        "topic with a concrete id",
        _set("topics", ["v2.detail.events.conversation.2f7bf00a-5a9e-4d1b-9f3c-7e2a1b0c9d8e.acd.end"]),
        f"{P}.topics[0]: 'v2.detail.events.conversation.2f7bf00a-5a9e-4d1b-9f3c-7e2a1b0c9d8e.acd.end' holds a concrete id",
    ),
    ("topic not a template", _set("topics", ["acd.end"]), f"{P}.topics[0]: 'acd.end' is not a topic template"),
    ("empty topics", _set("topics", []), f"{P}.topics: is empty; expected a non-empty list of topic templates"),
    (
        "duplicate queue",
        _set("queueIds", ["3f2e1d0c-9b8a-4765-8432-10fedcba9876"] * 2),
        f"{P}.queueIds[1]: '3f2e1d0c-9b8a-4765-8432-10fedcba9876' is listed twice",
    ),
    (
        "max concurrency below 2",
        _set("dispatcher.maxConcurrency", 1),
        f"{P}.dispatcher.maxConcurrency: 1 is out of range; expected an integer from 2 to 1000",
    ),
    (
        "reserved concurrency not int",
        _set("processorReservedConcurrency", "20"),
        f"{P}.processorReservedConcurrency: '20' is not an integer from 1 to 1000",
    ),
    (
        "batch > 10 without window",
        _set("dispatcher.maxBatchingWindowSeconds", 0),
        f"{P}.dispatcher.maxBatchingWindowSeconds: is 0 with batchSize > 10",
    ),
    (
        "retry max delay below interval",
        _set("retries.rateLimited.maxDelaySeconds", 5),
        f"{P}.retries.rateLimited.maxDelaySeconds: 5 is below intervalSeconds 10",
    ),
    ("retry budget unset", _set("retries.unavailable", None), f"{P}.retries.unavailable: missing; expected an object"),
    ("maxReceiveCount 0", _set("retries.maxReceiveCount", 0), f"{P}.retries.maxReceiveCount: 0 is out of range"),
    (
        "rule target event age",
        _set("ruleTarget.maximumEventAgeSeconds", 10),
        f"{P}.ruleTarget.maximumEventAgeSeconds: 10 is out of range; expected an integer from 60 to 86400",
    ),
    (
        "log retention",
        _set("logRetentionDays", 10),
        f"{P}.logRetentionDays: 10 is not allowed; expected one of 1, 3, 5",
    ),
    (
        "removal policy",
        _set("removalPolicy", "snapshot"),
        f"{P}.removalPolicy: 'snapshot' is not allowed; expected one of retain, destroy",
    ),
    ("alarm e-mail", _set("alarmEmail", "ops"), f"{P}.alarmEmail: 'ops' is not an e-mail address"),
    ("account", _set("account", "1234"), f"{P}.account: '1234' is not a 12-digit AWS account id"),
    (
        "architecture",
        _set("lambdaArchitecture", "arm"),
        f"{P}.lambdaArchitecture: 'arm' is not allowed; expected one of arm64, x86_64",
    ),
    ("unknown key (typo)", _set("queueID", []), f"{P}.queueID: unknown key; allowed keys:"),
    (
        "secret as ARN",
        _set("secretName", "arn:aws:secretsmanager:eu-central-1:111122223333:secret:x"),
        f"{P}.secretName: 'arn:aws:secretsmanager:eu-central-1:111122223333:secret:x' is an ARN",
    ),
    (
        "attribute map value",
        _set("attributeMap", {"aws_processed": 1}),
        f"{P}.attributeMap.aws_processed: 1 is not a string",
    ),
    (
        "domain not matching genesysRegion",
        lambda raw: raw.update(genesysRegion="eu-central-1", genesysDomain="mypurecloud.com"),
        f"{P}.genesysDomain: 'mypurecloud.com' is not the domain of genesysRegion 'eu-central-1'; expected "
        "'mypurecloud.de' (or set only one of the two)",
    ),
    (
        "unknown Genesys region",
        lambda raw: (raw.pop("genesysDomain"), raw.update(genesysRegion="eu-north-9")),
        f"{P}.genesysRegion: 'eu-north-9' is not a Genesys Cloud region; expected one of ap-northeast-1",
    ),
    (
        "no Genesys region at all",
        lambda raw: raw.pop("genesysDomain"),
        f"{P}.genesysRegion: missing; expected the org's Genesys Cloud region (genesysRegion, e.g. us-east-1) or its "
        "domain (genesysDomain, e.g. mypurecloud.com)",
    ),
    ("alarm topic not an ARN", _set("alarmTopicArn", "oncall"), f"{P}.alarmTopicArn: 'oncall' is not an SNS topic ARN"),
    ("lag threshold", _set("lagAlarmP99Seconds", 0), f"{P}.lagAlarmP99Seconds: 0 is out of range"),
    (
        "silence minutes not whole periods",
        _set("silenceAlarm", {"minutes": 32}),
        f"{P}.silenceAlarm.minutes: 32 is not a multiple of 5; expected whole 5-minute alarm periods",
    ),
    (
        "silence unknown key",
        _set("silenceAlarm", {"minutes": 30, "hours": 2}),
        f"{P}.silenceAlarm.hours: unknown key; allowed keys: activeHours, minutes",
    ),
    (
        "active hours time zone",
        _set("silenceAlarm.activeHours.timezone", "Mars/Olympus"),
        f"{P}.silenceAlarm.activeHours.timezone: 'Mars/Olympus' is not an IANA time zone",
    ),
    (
        "active hours clock",
        _set("silenceAlarm.activeHours.start", "7am"),
        f"{P}.silenceAlarm.activeHours.start: '7am' is not a local time HH:MM",
    ),
    (
        "active hours shorter than the silence",
        _set("silenceAlarm.activeHours.end", "07:20"),
        f"{P}.silenceAlarm.activeHours.end: '07:20' is not more than silenceAlarm.minutes (30) after start '07:00'",
    ),
    (
        "active hours days",
        _set("silenceAlarm.activeHours.days", "weekdays"),
        f"{P}.silenceAlarm.activeHours.days: 'weekdays' is not allowed; expected cron days of week such as MON-FRI",
    ),
    (
        "domain malformed",
        _set("genesysDomain", "not a domain"),
        f"{P}.genesysDomain: 'not a domain' is not a Genesys Cloud domain",
    ),
    (
        "unsupported topic",
        _set("topics", ["v2.users.{id}.routingStatus"]),
        f"{P}.topics[0]: 'v2.users.{{id}}.routingStatus' is not a conversation topic the dispatcher handles",
    ),
    (
        "acdOutcome with customer.end",
        _set("attributeMap", {"aws_acd_outcome": "{acdOutcome}"}),
        f"{P}.attributeMap.aws_acd_outcome: {{acdOutcome}} is carried only by acd.end events, but topics include "
        f"'{CUSTOMER_END}'",
    ),
    (
        "unknown template placeholder",
        _set("attributeMap", {"aws_x": "{ani}"}),
        f"{P}.attributeMap.aws_x: {{ani}} in '{{ani}}' is not allowed; expected one of conversationId",
    ),
    (
        "malformed external tag",
        _set("externalTag", "aws-{executionName"),
        f"{P}.externalTag: 'aws-{{executionName' is malformed",
    ),
    (
        "in-progress retry budget unset",
        _set("retries.idempotencyInProgress", None),
        f"{P}.retries.idempotencyInProgress: missing; expected an object",
    ),
    (
        "in-progress retries shorter than the timeout",
        _set("retries.idempotencyInProgress.maxAttempts", 3),
        f"{P}.retries.idempotencyInProgress: waits 14 s in all, not over the processor's 30 s timeout (an attempt "
        "that died holds the event's in-progress record that long); expected more maxAttempts or a longer "
        "intervalSeconds",
    ),
    (
        "AWS dependency retry budget unset",
        _set("retries.awsDependency", None),
        f"{P}.retries.awsDependency: missing; expected an object",
    ),
    (
        "AWS dependency attempts out of range",
        _set("retries.awsDependency.maxAttempts", 100),
        f"{P}.retries.awsDependency.maxAttempts: 100 is out of range",
    ),
]


@pytest.mark.parametrize("change,message", [(c, m) for _, c, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_config_fails_with_one_line_naming_the_key(change, message):
    with pytest.raises(ConfigError) as caught:
        parse_with(change)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_unknown_environment_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"^-c env=staging: unknown environment; expected one of dev, prod"):
        load(CDK_CONTEXT.get, "staging")


def test_acd_outcome_is_fine_when_every_topic_carries_it():
    config = parse_with(lambda raw: raw.update(topics=[ACD_END], attributeMap={"aws_acd_outcome": "{acdOutcome}"}))
    assert config.attribute_map == {"aws_acd_outcome": "{acdOutcome}"}


def test_explicit_domain_is_allowed_for_a_region_outside_the_table():
    config = parse_with(lambda raw: raw.update(region="af-south-1", genesysDomain="mypurecloud.com"))
    assert config.genesys_domain == "mypurecloud.com"


def test_config_copies_of_lambda_facts_match_the_lambda_code():
    """infra/constants.py copies a few facts from lambdas/ (infra does not import Lambda code): keep them equal."""
    from genesys_pipeline import events, processing

    assert {C.CONVERSATION_TOPIC_PREFIX + s for s in C.SUPPORTED_TOPIC_SUFFIXES} == set(events.SUPPORTED_TOPICS)
    assert set(C.TEMPLATE_EVENT_PLACEHOLDERS) == set(processing.EVENT_PLACEHOLDERS)
    assert set(C.TEMPLATE_BODY_FIELDS) == set(processing.KNOWN_EVENT_FIELDS)


def test_domain_comes_from_the_genesys_region():
    config = parse_with(lambda raw: (raw.pop("genesysDomain"), raw.update(genesysRegion="ap-southeast-2")))
    assert (config.genesys_region, config.genesys_domain) == ("ap-southeast-2", "mypurecloud.com.au")


@pytest.mark.parametrize("aws_region", ["us-east-1", "us-east-2", "eu-west-1", "eu-central-1", "ap-southeast-2"])
@pytest.mark.parametrize("genesys_region", sorted(C.GENESYS_DOMAINS_BY_REGION))
def test_any_genesys_region_pairs_with_any_aws_region(genesys_region, aws_region):
    """The integration names the AWS region itself (awsAccountRegion): the two are independent."""
    config = parse_with(
        lambda raw: (raw.pop("genesysDomain"), raw.update(region=aws_region, genesysRegion=genesys_region))
    )
    assert (config.region, config.genesys_domain) == (aws_region, C.GENESYS_DOMAINS_BY_REGION[genesys_region])


def test_the_issue_pairs_are_accepted():
    """mypurecloud.com with us-east-2, and with eu-west-1, were refused before."""
    for region in ("us-east-2", "eu-west-1"):
        config = parse_with(lambda raw, region=region: raw.update(region=region, genesysDomain="mypurecloud.com"))
        assert (config.region, config.genesys_domain) == (region, "mypurecloud.com")


def test_a_bad_config_fails_cdk_synth_with_that_one_line(tmp_path):
    """Through app.py, as `cdk synth` runs it (the CLI hands cdk.json's context over in CDK_CONTEXT_JSON):
    exit 2, one stderr line, no traceback."""
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps({**CDK_CONTEXT, "env": "nope"}),
            "CDK_OUTDIR": str(tmp_path),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: -c env=nope: unknown environment; expected one of dev, prod (cdk.json context environments)"
    ]
    assert "Traceback" not in done.stderr


class TestRulePattern:
    def test_queue_scoped_and_unscoped_topics_make_an_or(self):
        config = load(CDK_CONTEXT.get, "dev")
        assert rule_event_pattern(config) == {
            "source": [{"prefix": "aws.partner/genesys.com/cloud/6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b/"}],
            "$or": [
                {
                    "detail-type": [ACD_END],
                    "detail": {"eventBody": {"queueId": ["a1b2c3d4-e5f6-4789-9123-4567890abcde"]}},
                },
                {"detail-type": [CUSTOMER_END]},
            ],
        }

    def test_no_queue_ids_means_no_queue_filter(self):
        config = parse_with(_set("queueIds", []), "dev")
        assert rule_event_pattern(config) == {
            "source": [{"prefix": config.source_prefix}],
            "detail-type": [ACD_END, CUSTOMER_END],
        }

    def test_only_queue_scoped_topics_need_no_or(self):
        config = parse_with(_set("topics", [ACD_END]), "dev")
        assert rule_event_pattern(config) == {
            "source": [{"prefix": config.source_prefix}],
            "detail-type": [ACD_END],
            "detail": {"eventBody": {"queueId": list(config.queue_ids)}},
        }
