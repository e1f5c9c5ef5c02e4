"""The pipeline end to end, locally: partner bus -> rule -> SQS -> dispatcher -> Step Functions ->
processor -> Genesys simulator, plus the error logger. Each test checks the accounting invariant."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from gcpipe import traffic as gen
from gcpipe.cli import cli
from gcpipe.local.ledger import DLQ_REDRIVE_REASON
from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.run.stack_config import retry_attempts
from gcpipe.local.stepfunctions import RETRY_CLOCK

pytestmark = pytest.mark.e2e


def _definition(e2e) -> dict[str, Any]:
    sfn = e2e.pipeline.client("stepfunctions")
    return json.loads(sfn.describe_state_machine(stateMachineArn=e2e.pipeline.outputs["StateMachineArn"])["definition"])


def _invocations(function_output_key: str, e2e) -> list[dict[str, Any]]:
    name = e2e.pipeline.outputs[function_output_key]
    return [i for i in RUNTIME.invocations if i["function"] == name]


def _start_execution_of(e2e) -> tuple[type, Any]:
    """The moto backend class that serves StartExecution (the executing one, with execute_state_machine)."""
    from moto.stepfunctions.responses import get_backend

    backend = get_backend(e2e.pipeline.account_id, e2e.pipeline.region)
    return type(backend), type(backend).start_execution


# 1
def test_acd_end_for_a_configured_queue_is_written_once_with_the_configured_attributes(e2e):
    envelope = e2e.event("acd.end")
    [sent] = e2e.send(envelope)
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == 1 and sent.outcome == "applied"
    body = envelope["detail"]["eventBody"]
    [write] = e2e.processor_writes()
    assert write.method == "PATCH"
    assert (write.conversation_id, write.participant_id) == (body["conversationId"], body["participantId"])
    attributes = write.body["attributes"]
    assert set(attributes) == set(e2e.config.attribute_map)
    for name, template in e2e.config.attribute_map.items():
        if "{" not in template:
            assert attributes[name] == template
        if template == "{executionName}":
            assert attributes[name] == sent.dedup_key  # execution name = dedup key
    assert e2e.sim.attributes_of(body["conversationId"], body["participantId"]) == attributes
    [execution] = e2e.executions()
    assert execution["status"] == "SUCCEEDED" and execution["name"] == sent.dedup_key


# 2
def test_other_topics_and_queues_never_reach_the_processor(e2e):
    others = [e2e.event("attributes")]
    for topic in ("acd.start", "user.end", "customer.end"):
        if gen.topic_template(topic) not in e2e.config.topics:
            others.append(e2e.event(topic))
    if e2e.config.queue_ids:
        others.append(e2e.event("acd.end", queue_id=gen.new_id()))
    sent = e2e.send(*others)
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["filtered"] == len(others)
    assert all(s.rule_filtered for s in sent), [s.as_json() for s in sent]
    main_queue = e2e.pipeline.outputs["MainQueueUrl"]
    attrs = e2e.pipeline.client("sqs").get_queue_attributes(QueueUrl=main_queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert not _invocations("DispatcherFunctionName", e2e)
    assert not _invocations("ProcessorFunctionName", e2e)
    assert e2e.executions() == [] and e2e.sim.writes == []


# 3
def test_the_same_event_delivered_three_times_gives_one_execution_and_one_write(e2e):
    original = e2e.event("acd.end")
    e2e.send(original, gen.duplicate(original))  # likely in one batch: the in-batch duplicate
    e2e.settle()
    e2e.send(gen.duplicate(original))  # later: ExecutionAlreadyExists
    e2e.settle()

    acc = e2e.assert_accounted()
    assert (acc.sent, acc.counts["applied"], acc.counts["duplicate"]) == (3, 1, 2)
    assert len({e.dedup_key for e in e2e.ledger.sent}) == 1
    assert len(e2e.executions()) == 1
    assert len(e2e.processor_writes()) == 1


# 4
def test_malformed_unsupported_version_and_wrong_org_events_are_dead_lettered_with_reasons(e2e):
    missing = gen.missing_field(e2e.event("acd.end"))
    wrong_type = e2e.event("acd.end")
    wrong_type["detail"]["eventBody"]["eventTime"] = "yesterday"
    unsupported = gen.unsupported_version(e2e.event("acd.end"))
    wrong_org = gen.wrong_org(e2e.event("acd.end"))
    sent = e2e.send(missing, wrong_type, unsupported, wrong_org)
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["dead_lettered"] == 4, acc.as_json()
    reasons = {i: s.reason or "" for i, s in enumerate(sent)}
    assert "conversationId" in reasons[0]
    assert "eventTime" in reasons[1]
    assert "99" in reasons[2] or "version" in reasons[2].lower()
    assert "org" in reasons[3]
    assert sent[3].route == "queue"  # a partner bus only takes its own source's events
    dlq = e2e.dead_letter_messages()
    assert len(dlq) == 4
    assert all(m["MessageAttributes"].get("DeadLetterReason", {}).get("StringValue") for m in dlq)
    assert e2e.executions() == [] and e2e.sim.writes == []


# 5
def test_a_429_storm_longer_than_one_retry_after_ends_with_everything_applied_once(e2e):
    attempts = retry_attempts(_definition(e2e), "GenesysRateLimited")
    assert attempts >= 3, "the Process task must retry GenesysRateLimited"
    events = [e2e.event("acd.end") for _ in range(5)]
    # attempts-1 consecutive 429s: even one event taking all of them still gets through. Each 429
    # pauses the whole environment (the request budget) for its Retry-After, in real time; 1 s is
    # within the processor's inline limit, so processors wait it out and the state machine retries
    # the invocations that met a 429 twice in a row. (A Retry-After over the inline limit is left
    # to the ASL backoff, whose waits these tests skip: tests/integration cover that path.)
    storm = attempts - 1
    e2e.sim.fail_next(storm, status=429, retry_after=1)
    RETRY_CLOCK.requested.clear()
    e2e.send(*events)
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == 5 and acc.counts["failed"] == 0
    assert e2e.sim.request_count("/api/", status=429) == storm
    for e in events:
        assert len(e2e.processor_writes(e["detail"]["eventBody"]["conversationId"])) == 1
    assert len(e2e.processor_writes()) == 5


# 6
def test_5xx_beyond_the_retry_budget_fails_at_process_is_logged_and_a_replay_applies_it_once(e2e):
    attempts = retry_attempts(_definition(e2e), "GenesysUnavailable")
    envelope = e2e.event("acd.end")
    conversation = envelope["detail"]["eventBody"]["conversationId"]
    e2e.sim.fail_next(attempts, status=503)
    [sent] = e2e.send(envelope)
    e2e.settle()

    [failed] = e2e.executions("FAILED")
    assert failed["error"] == "GenesysUnavailable"
    [line] = [ln for ln in e2e.capture.lines if ln.outcome == "failed"]
    assert line.dedup_key == sent.dedup_key
    assert line.record.failed_state == "Process"  # failed AT the Process state: redrive resumes there
    assert line.record.execution_arn == failed["executionArn"]
    assert e2e.sim.request_count("/api/", status=503) == attempts
    assert e2e.processor_writes(conversation) == []
    acc = e2e.assert_accounted()
    assert acc.counts["failed"] == 1

    # Genesys recovers; the operator replays the failure.
    result = CliRunner().invoke(
        cli, ["--local", "redrive", failed["executionArn"]], obj={"in_process": True, "outputs": e2e.pipeline.outputs}
    )
    assert result.exit_code == 0, result.output
    assert "same input" in result.output and "locally" in result.output
    e2e.settle()

    acc = e2e.assert_accounted()
    assert (acc.counts["applied"], acc.counts["failed"], acc.superseded) == (1, 0, 1)
    assert "replay" in " ".join(sent.notes)
    assert len(e2e.processor_writes(conversation)) == 1


# 7
def test_start_execution_throttled_for_some_records_is_retried_through_sqs_without_loss_or_duplicates(e2e, monkeypatch):
    from moto.core.exceptions import AWSError

    class Throttled(AWSError):
        TYPE = "ThrottlingException"
        STATUS = 400

    backend_class, original = _start_execution_of(e2e)
    # As many events as the request budget's burst lets start at once (dev: 5), so that one batch
    # starts them all and none is deferred.
    burst = int(e2e.pipeline.functions["DispatcherFunctionName"]["Environment"]["Variables"]["REQUEST_BUDGET_BURST"])
    n = min(6, burst)
    assert n >= 3
    events = [e2e.event("acd.end") for _ in range(n)]
    victims = {e2e.sender.dedup_key(e)[0] for e in events[:2]}
    # StartExecution is throttled for two records of the batch, on every call (the dispatcher's
    # boto3 client retries a throttled call itself) until the batch has been answered.
    throttle = {"on": True, "calls": 0}

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):
        if throttle["on"] and name in victims:
            throttle["calls"] += 1
            raise Throttled("Rate exceeded")
        return original(self, state_machine_arn, name, *args, **kwargs)

    monkeypatch.setattr(backend_class, "start_execution", start_execution)
    e2e.send(*events)
    assert e2e.pipeline.drain(60)
    [first] = e2e.pipeline.poller.results
    assert len(first.message_ids) == n and len(first.left) == 2  # one batch; two records back to SQS
    assert len(e2e.executions()) == n - 2
    throttle["on"] = False
    e2e.settle()  # their visibility timeout passes; SQS hands them out again

    assert throttle["calls"] >= 2
    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == n and acc.counts["duplicate"] == 0
    assert len(e2e.executions()) == n and len(e2e.processor_writes()) == n
    for e in events:
        assert len(e2e.processor_writes(e["detail"]["eventBody"]["conversationId"])) == 1
    assert e2e.dead_letter_messages() == []


# 8
def test_a_poison_message_reaches_the_dlq_after_max_receive_count(e2e, monkeypatch):
    from moto.core.exceptions import AWSError

    class ServiceUnavailable(AWSError):
        TYPE = "ServiceUnavailable"
        STATUS = 500

    poison, healthy = e2e.event("acd.end"), e2e.event("acd.end")
    poison_key = e2e.sender.dedup_key(poison)[0]
    backend_class, original = _start_execution_of(e2e)
    calls = {"poison": 0}

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):
        if name == poison_key:  # this record's dispatch always fails transiently
            calls["poison"] += 1
            raise ServiceUnavailable("try again")
        return original(self, state_machine_arn, name, *args, **kwargs)

    monkeypatch.setattr(backend_class, "start_execution", start_execution)
    sqs = e2e.pipeline.client("sqs")
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=e2e.pipeline.outputs["MainQueueUrl"], AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    sent = e2e.send(poison, healthy)
    e2e.settle(max_rounds=int(redrive["maxReceiveCount"]) + 3)

    acc = e2e.assert_accounted()
    assert sent[0].outcome == "dead_lettered" and sent[0].reason == DLQ_REDRIVE_REASON
    assert sent[1].outcome == "applied"
    receives = [r for r in e2e.pipeline.poller.results if r.left]
    assert len(receives) == int(redrive["maxReceiveCount"])
    [dead] = e2e.dead_letter_messages()
    assert json.loads(dead["Body"])["id"] == sent[0].event_id
    assert calls["poison"] >= int(redrive["maxReceiveCount"])
    assert acc.counts["dead_lettered"] == 1


# 9
def test_a_token_revoked_mid_run_costs_each_container_one_refresh_and_no_lost_event(e2e):
    # One token per warm container (module state of each processor process), as on Lambda
    processor = e2e.pipeline.outputs["ProcessorFunctionName"]
    e2e.send(*[e2e.event("acd.end") for _ in range(3)])
    e2e.settle()
    warm = RUNTIME.workers().started[processor]
    assert e2e.sim.token_fetches == warm
    e2e.sim.revoke_tokens()
    e2e.send(*[e2e.event("acd.end") for _ in range(5)])
    e2e.settle()

    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == 8
    new_containers = RUNTIME.workers().started[processor] - warm
    refreshes = e2e.sim.token_fetches - warm - new_containers  # a new container fetches its first token
    assert 1 <= refreshes <= warm  # a warm container that met the 401 refreshed once, none twice
    assert e2e.sim.request_count("/api/", status=401) == refreshes
    assert len(e2e.processor_writes()) == 8


def test_late_within_four_days_is_applied_and_older_than_max_age_is_stale(e2e):
    late = gen.late(e2e.event("acd.end"), by=timedelta(days=3))
    stale = gen.late(e2e.event("acd.end"), by=timedelta(seconds=e2e.config.max_age_seconds + 3600))
    sent = e2e.send(late, stale)
    e2e.settle()

    e2e.assert_accounted()
    assert [s.outcome for s in sent] == ["applied", "stale"]
    assert len(e2e.processor_writes()) == 1
