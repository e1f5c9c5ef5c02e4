"""No customer identifier, token or client secret reaches a log line.

The unit part checks ``redact``; the rest runs the samples through the processor
and the error logger (simulator + moto) with every fault path that logs, and
searches everything written: the Powertools logger's output, stdout/stderr
(metrics EMF) and any stdlib logging record.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from genesys_pipeline.errors import GenesysError, InvalidEvent
from genesys_pipeline.failures import handle_status_change
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.observability import logger
from genesys_pipeline.processing import Processor
from genesys_pipeline.redaction import REDACTED, redact
from genesys_pipeline.settings import ErrorLoggerSettings, ProcessorSettings
from tests.integration.test_error_logger import failed_execution, fresh_caches_and_aws  # noqa: F401 - fixture
from tests.integration.test_processor import (  # noqa: F401 - fixtures
    CLIENT_SECRET,
    TABLE,
    FakeLambdaContext,
    LogCapture,
    execution_input,
    genesys_settings,
    sim,
    task_payload,
)

SENSITIVE_KEYS = ("ani", "dnis", "externalContactId")


def test_redact_masks_sensitive_keys_at_any_depth_and_case():
    data = {
        "ANI": "tel:+13175550123",
        "nested": [{"externalContactId": "1245"}],
        "client_secret": "s",
        "ok": "v",
        "dnis": "",
    }
    assert redact(data) == {
        "ANI": REDACTED,
        "nested": [{"externalContactId": REDACTED}],
        "client_secret": REDACTED,
        "ok": "v",
        "dnis": "",
    }


def test_redact_masks_addresses_and_credentials_inside_strings():
    text = redact(
        "called from tel:+13175550123 via sip:alice@example.com with Authorization: Bearer abc.DEF-123 "
        "and Basic dXNlcjpwYXNzd29yZA=="
    )
    assert "+13175550123" not in text and "alice@example.com" not in text and "abc.DEF-123" not in text
    assert "dXNlcjpwYXNzd29yZA==" not in text and text.count(REDACTED) == 4


def test_redact_masks_sensitive_members_inside_json_strings():
    inner = {"ani": "tel:+13175550123", "externalContactId": "1245-ab", "queueId": "q"}
    once = json.dumps(inner)
    twice = json.dumps({"cause": once})
    for text in (once, twice, json.dumps({"x": twice})):
        masked = redact(text)
        assert "1245-ab" not in masked and "+13175550123" not in masked and '"q' in masked.replace("\\", "")
    assert json.loads(redact(once)) == {"ani": REDACTED, "externalContactId": REDACTED, "queueId": "q"}


def test_the_logger_redacts_what_it_is_given():
    with LogCapture() as logs:
        logger.info("event", extra={"ani": "tel:+13175550123", "body": {"externalContactId": "1245-secret"}})
        logger.info("cause tel:+18005550199")
    assert "+13175550123" not in logs.text and "1245-secret" not in logs.text and "+18005550199" not in logs.text


def sensitive_values(sample_events) -> set[str]:
    values = set()
    for envelope in sample_events.values():
        body = envelope["detail"]["eventBody"]
        values |= {str(body[k]) for k in SENSITIVE_KEYS if body.get(k)}
        values |= {str(body[k]).split(":", 1)[-1] for k in SENSITIVE_KEYS if body.get(k)}  # the bare number too
    assert len(values) >= 3  # the samples do carry ani, dnis and externalContactId
    return values


def test_processing_and_error_logging_the_samples_leaks_nothing(
    fresh_caches_and_aws, sim, sample_events, capsys, caplog
):
    caplog.set_level(logging.INFO)  # botocore DEBUG prints raw AWS responses; no Lambda runs it
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    genesys = genesys_settings(sim)
    processor = Processor(
        ProcessorSettings(genesys=genesys, idempotency_table=TABLE, attribute_map={"acd": "{conversationId}"}),
        GenesysClient(genesys),
    )
    error_settings = ErrorLoggerSettings(genesys=genesys, mark_failed_conversations=True, failure_status_attribute="s")
    sfn = boto3.client("stepfunctions")

    with LogCapture() as logs:
        for name, envelope in sample_events.items():
            # The worst case: the customer identifiers were not stripped before Step Functions.
            event_input = execution_input(envelope, keep_sensitive=True)
            payload = task_payload(event_input)
            processor.process(payload, FakeLambdaContext())  # applied
            processor.process(payload, FakeLambdaContext())  # duplicate
            sim.revoke_tokens()  # 401 -> refresh -> success
            processor.process(task_payload(execution_input(envelope, keep_sensitive=True)))
            for status in (400, 429, 503):
                sim.fail_next(1, status=status, retry_after=60)  # each raises at once: nothing inline
                with pytest.raises(GenesysError):
                    processor.process(task_payload(execution_input(envelope, keep_sensitive=True)))
            broken = execution_input(envelope, keep_sensitive=True)
            broken["participantId"] = None
            with pytest.raises(InvalidEvent):
                processor.process(task_payload(broken))

            ani = str(envelope["detail"]["eventBody"].get("ani", "tel:+13175550123"))
            failed = failed_execution(
                sfn, {**event_input, "dedupKey": f"{name}-failed"}, cause_message=f"customer {ani} said no"
            )
            handle_status_change(failed, sfn=sfn, genesys=GenesysClient(genesys), settings=error_settings)
            sim.fail_next(1, status=503)
            handle_status_change(failed, sfn=sfn, genesys=GenesysClient(genesys), settings=error_settings)
        logger.info("whole input, by mistake", extra={"input": json.dumps(event_input), "event": event_input})

    captured = capsys.readouterr()
    ours = [
        r for r in caplog.records if not r.name.startswith("moto")
    ]  # moto's own ASL interpreter logs the test's cause
    everything = "\n".join([logs.text, captured.out, captured.err, "\n".join(r.getMessage() for r in ours)])
    assert len(logs.records) > 20 and "event applied" in logs.text and "event failed" in logs.text
    secrets = sensitive_values(sample_events) | set(sim.issued_tokens) | {CLIENT_SECRET}
    assert len(sim.issued_tokens) >= 3
    leaked = sorted(s for s in secrets if s in everything)
    assert leaked == []


@pytest.mark.parametrize(
    "value",
    [
        "+13175550123",
        "+1 317 555 0123",
        "+49 (0)30 1234567",
        "+44-20-7946-0958",
        "+33.1.23.45.67.89",
        "317-555-0123",
        "(317) 555-0123",
        "317.555.0123",
        "alice@example.com",
        "first.last+tag@mail.example.co.uk",
    ],
)
def test_redact_masks_phone_numbers_and_emails_under_any_key(value):
    """The issue's leak: a phone number under `message`, an e-mail under `note`, went through."""
    data = {"message": f"customer asked to call back on {value} today", "note": value, "deep": [{"x": value}]}
    masked = redact(data)
    assert value not in json.dumps(masked)
    assert masked["note"] == REDACTED and REDACTED in masked["message"]


@pytest.mark.parametrize(
    "value",
    [
        "1649237504949",  # eventTime, epoch ms
        "2026-12-01T21:06:24.123Z",
        "2026-12-01 21:06:24,702+0000",
        "6f3b2f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",  # ids stay readable
        "a1b2c3d4-e5f6-4789-9123-4567890abcde",
        "60000",
        "GenesysEvents-prod-process-event",
        "v2.detail.events.conversation.{id}.acd.end",
        "retry 3 of 10 after 2.5 s",
        "arn:aws:states:eu-central-1:111122223333:execution:x:y",
    ],
)
def test_redact_leaves_ids_times_and_counts_alone(value):
    assert redact({"message": value}) == {"message": value}
