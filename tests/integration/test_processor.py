"""The processor against the Genesys simulator on loopback, with DynamoDB and Secrets Manager in moto.

Helpers at the top (``execution_input``, ``genesys_settings``, ``LogCapture``...) are
shared with the error-logger and redaction tests.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from gcpipe.simulator import GenesysSimulator
from genesys_pipeline.errors import (
    GenesysBadCredentials,
    GenesysForbidden,
    GenesysRateLimited,
    GenesysRejected,
    GenesysUnavailable,
    InvalidEvent,
)
from genesys_pipeline.genesys import GenesysClient, clear_token_cache
from genesys_pipeline.model import GenesysEvent
from genesys_pipeline.observability import logger, metrics
from genesys_pipeline.processing import Processor
from genesys_pipeline.settings import GenesysSettings, ProcessorSettings

CLIENT_ID = "processor-test-client"
CLIENT_SECRET = "processor-test-secret-Zq81"
SECRET_NAME = "genesys-test"
TABLE = "genesys-test-idempotency"
SENSITIVE = ("ani", "dnis", "externalContactId")


# ----------------------------------------------------------------------------- shared helpers


def execution_input(envelope: dict, dedup_key: str | None = None, *, keep_sensitive: bool = False) -> dict:
    """What the dispatcher hands Step Functions for ``envelope`` (GenesysEvent.to_execution_input()).

    ``keep_sensitive`` leaves ani/dnis/externalContactId in ``fields``: a worst case for log-leak checks.
    """
    detail, body = envelope["detail"], envelope["detail"]["eventBody"]
    event_time = datetime.fromtimestamp(body["eventTime"] / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    fields = {k: v for k, v in body.items() if keep_sensitive or k not in SENSITIVE}
    return GenesysEvent(
        dedup_key=dedup_key or f"test-{uuid.uuid4().hex}",
        event_id=envelope["id"],
        source=envelope["source"],
        org_id=envelope["source"].split("/")[3],
        topic=envelope["detail-type"],
        topic_name=detail["topicName"],
        schema_version=detail["version"],
        event_time=event_time.replace("+00:00", "Z"),
        correlation_id=detail["metadata"]["CorrelationId"],
        conversation_id=body["conversationId"],
        participant_id=body.get("participantId"),
        queue_id=body.get("queueId"),
        fields=fields,
    ).to_execution_input()


def task_payload(event_input: dict, *, retry_count: int = 0, execution_name: str | None = None) -> dict:
    """The Process task's payload (docs/contracts.md)."""
    name = execution_name or event_input["dedupKey"]
    return {
        "event": event_input,
        "executionName": name,
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:genesys-test:{name}",
        "retryCount": retry_count,
    }


def genesys_settings(sim: GenesysSimulator, **overrides) -> GenesysSettings:
    values = dict(
        domain="mypurecloud.com",
        secret_name=SECRET_NAME,
        api_base_url=sim.base_url,
        login_base_url=sim.base_url,
        connect_timeout_seconds=1.0,
        read_timeout_seconds=2.0,
    )
    values.update(overrides)
    return GenesysSettings(**values)


@dataclass
class FakeLambdaContext:
    function_name: str = "genesys-test-processor"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:genesys-test-processor"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class LogCapture:
    """Everything the Powertools logger writes (its real handler and formatter, pointed at a buffer)."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self._saved = []

    def __enter__(self) -> "LogCapture":
        for handler in logger._logger.handlers:
            self._saved.append((handler, handler.setStream(self.buffer)))
        self._level = logger.log_level
        logger.setLevel("DEBUG")
        return self

    def __exit__(self, *exc) -> None:
        for handler, stream in self._saved:
            handler.setStream(stream)
        logger.setLevel(self._level)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    @property
    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def with_message(self, message: str) -> list[dict]:
        return [r for r in self.records if r.get("message") == message]


@pytest.fixture
def fresh_caches():
    """The module-scope token cache and Powertools' secret cache, empty before and after each test."""
    clear_token_cache()
    parameters.clear_caches()
    metrics.clear_metrics()
    yield
    clear_token_cache()
    parameters.clear_caches()
    metrics.clear_metrics()


@pytest.fixture
def aws(fresh_caches):
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        )
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        yield


@pytest.fixture
def sim():
    with GenesysSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as s:
        yield s


@pytest.fixture
def logs():
    with LogCapture() as capture:
        yield capture


# ----------------------------------------------------------------------------- processor fixtures


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def make_processor(aws, sim, sleeps):
    def make(**overrides) -> Processor:
        attribute_map = overrides.pop("attribute_map", None)
        external_tag = overrides.pop("external_tag", None)
        genesys = genesys_settings(sim, **overrides)
        settings = ProcessorSettings(
            genesys=genesys,
            idempotency_table=TABLE,
            external_tag=external_tag,
            **({"attribute_map": attribute_map} if attribute_map is not None else {}),
        )
        return Processor(settings, GenesysClient(genesys, sleep=sleeps))

    return make


@pytest.fixture
def processor(make_processor):
    return make_processor()


@pytest.fixture
def acd_end(sample_events):
    return execution_input(sample_events["acd-end"])


def conversation(event_input):
    return event_input["conversationId"], event_input["participantId"]


# ----------------------------------------------------------------------------- 200


def test_applies_the_attribute_map_and_reports_applied(processor, sim, acd_end, logs):
    result = processor.process(task_payload(acd_end), FakeLambdaContext())

    conv, part = conversation(acd_end)
    assert result["outcome"] == "applied"
    assert (
        result["dedupKey"] == acd_end["dedupKey"]
        and result["conversationId"] == conv
        and result["participantId"] == part
    )
    assert result["attributes"] == ["aws_pipeline_execution", "aws_processed", "aws_processed_at"]
    written = sim.attributes_of(conv, part)
    assert written["aws_processed"] == "true" and written["aws_pipeline_execution"] == acd_end["dedupKey"]
    assert datetime.fromisoformat(written["aws_processed_at"].replace("Z", "+00:00")).tzinfo is not None
    assert len(sim.writes_for(conv)) == 1 and sim.token_fetches == 1
    applied = logs.with_message("event applied")
    assert len(applied) == 1 and applied[0]["outcome"] == "applied" and applied[0]["dedup_key"] == acd_end["dedupKey"]


def test_templates_reference_event_fields_and_set_the_external_tag(make_processor, sim, acd_end):
    processor = make_processor(
        attribute_map={"acd": "{acdOutcome} in {queueId}", "media": "{mediaType}"}, external_tag="gc-{conversationId}"
    )
    processor.process(task_payload(acd_end))
    conv, part = conversation(acd_end)
    assert sim.attributes_of(conv, part) == {"acd": f"ANSWERED in {acd_end['queueId']}", "media": "VOICE"}
    assert sim.external_tag_of(conv) == f"gc-{conv}"
    assert [w.method for w in sim.writes_for(conv)] == ["PATCH", "PUT"]


# ----------------------------------------------------------------------------- error taxonomy


@pytest.mark.parametrize(
    "status, error",
    [
        (400, GenesysRejected),
        (403, GenesysForbidden),
        (409, GenesysRejected),
        (413, GenesysRejected),
        (415, GenesysRejected),
        (500, GenesysUnavailable),
        (503, GenesysUnavailable),
        (504, GenesysUnavailable),
        (408, GenesysUnavailable),
    ],
)
def test_http_status_maps_to_the_named_error(processor, sim, acd_end, status, error, logs):
    sim.fail_next(1, status=status)
    with pytest.raises(error) as raised:
        processor.process(task_payload(acd_end))
    conv, part = conversation(acd_end)
    message = str(raised.value)
    assert f"HTTP {status}" in message and f"/conversations/{conv}/participants/{part}/attributes" in message
    assert raised.value.correlation_id and raised.value.correlation_id in message
    assert raised.value.status == status
    assert sim.writes == []
    failure = [r for r in logs.records if r.get("message") == "Genesys request failed"]
    assert (
        failure
        and failure[0]["genesys_correlation_id"] == raised.value.correlation_id
        and failure[0]["status"] == status
    )


def test_a_failed_write_leaves_no_idempotency_record_so_the_retry_writes(processor, sim, acd_end):
    sim.fail_next(1, status=503)
    with pytest.raises(GenesysUnavailable):
        processor.process(task_payload(acd_end))
    result = processor.process(task_payload(acd_end, retry_count=1))
    assert result["outcome"] == "applied" and len(sim.writes) == 1


def test_404_for_an_unknown_conversation_is_rejected(aws, sleeps, acd_end):
    with GenesysSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, known_conversations_only=True) as strict:
        genesys = genesys_settings(strict)
        processor = Processor(ProcessorSettings(genesys=genesys, idempotency_table=TABLE), GenesysClient(genesys))
        with pytest.raises(GenesysRejected, match="HTTP 404"):
            processor.process(task_payload(acd_end))


def test_401_refreshes_the_token_once_then_succeeds(processor, sim, acd_end, sample_events):
    processor.process(task_payload(acd_end))
    sim.revoke_tokens()
    result = processor.process(task_payload(execution_input(sample_events["customer-end"])))
    assert result["outcome"] == "applied"
    assert sim.token_fetches == 2 and len(sim.writes) == 2


def test_401_twice_is_bad_credentials(processor, sim, acd_end):
    sim.fail_next(2, status=401)
    with pytest.raises(GenesysBadCredentials, match="HTTP 401"):
        processor.process(task_payload(acd_end))
    assert sim.token_fetches == 2 and sim.writes == []


def test_token_endpoint_refusing_the_client_is_bad_credentials(aws, sim, acd_end):
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps({"client_id": CLIENT_ID, "client_secret": "rotated-elsewhere"})
    )
    genesys = genesys_settings(sim)
    processor = Processor(ProcessorSettings(genesys=genesys, idempotency_table=TABLE), GenesysClient(genesys))
    with pytest.raises(GenesysBadCredentials, match="unauthorized_client"):
        processor.process(task_payload(acd_end))


def test_429_with_a_short_retry_after_waits_inline_then_succeeds(processor, sim, acd_end, sleeps):
    sim.fail_next(1, status=429, retry_after=1)
    result = processor.process(task_payload(acd_end))
    assert result["outcome"] == "applied" and sleeps == [1.0] and len(sim.writes) == 1
    assert metrics.metric_set["GenesysRateLimited"]["Value"] == [1.0]


def test_429_without_retry_after_waits_the_sdk_default_3s(processor, sim, acd_end, sleeps):
    sim.fail_next(1, status=429, retry_after=9, retry_after_header=False)
    result = processor.process(task_payload(acd_end))
    assert result["outcome"] == "applied" and sleeps == [3.0]


def test_429_with_a_long_retry_after_is_left_to_step_functions(processor, sim, acd_end, sleeps):
    sim.fail_next(1, status=429, retry_after=30)
    with pytest.raises(GenesysRateLimited) as raised:
        processor.process(task_payload(acd_end))
    assert raised.value.retry_after == 30 and sleeps == [] and sim.writes == []
    assert "retry after 30s" in str(raised.value) and raised.value.correlation_id in str(raised.value)


def test_429_inline_waits_are_bounded(processor, sim, acd_end, sleeps):
    sim.fail_next(5, status=429, retry_after=1)
    with pytest.raises(GenesysRateLimited):
        processor.process(task_payload(acd_end))
    assert sleeps == [1.0, 1.0]


def test_429_from_the_simulators_rate_limit_with_a_real_short_wait(make_processor, sim, sample_events):
    processor = make_processor(max_inline_retry_after_seconds=1.0)
    processor._genesys._sleep = __import__("time").sleep  # a real wait: the window must really refill
    sim.set_rate_limit(1, retry_after=1)
    results = [processor.process(task_payload(execution_input(sample_events["acd-end"]))) for _ in range(2)]
    assert [r["outcome"] for r in results] == ["applied", "applied"]
    assert sim.request_count("/api/v2/", status=429) == 1


def test_a_hung_request_times_out_as_unavailable(make_processor, sim, acd_end):
    processor = make_processor(read_timeout_seconds=0.3)
    sim.hang_next(1)
    with pytest.raises(GenesysUnavailable, match="timed out"):
        processor.process(task_payload(acd_end))
    assert sim.writes == []


def test_connection_refused_is_unavailable(aws, acd_end):
    with GenesysSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as gone:
        url = gone.base_url
    genesys = GenesysSettings(
        domain="x", secret_name=SECRET_NAME, api_base_url=url, login_base_url=url, connect_timeout_seconds=0.5
    )
    processor = Processor(ProcessorSettings(genesys=genesys, idempotency_table=TABLE), GenesysClient(genesys))
    with pytest.raises(GenesysUnavailable, match="unreachable|failed"):
        processor.process(task_payload(acd_end))


# ----------------------------------------------------------------------------- token cache


def test_one_token_fetch_for_many_events_across_clients(make_processor, sim, sample_events):
    first, second = make_processor(), make_processor()  # two clients, one warm container
    for i in range(50):
        (first if i % 2 else second).process(task_payload(execution_input(sample_events["acd-end"])))
    assert sim.token_fetches == 1 and len(sim.writes) == 50
    assert metrics.metric_set["GenesysTokenFetches"]["Value"] == [1.0]
    assert len(metrics.metric_set["GenesysLatencyMs"]["Value"]) == 50


def test_token_is_refreshed_a_margin_before_it_expires(aws, sim, acd_end):
    now = [1000.0]
    sim.set_token_ttl(300)  # the shortest lifetime Genesys allows: margin = min(300 s, 10% of 300 s) = 30 s
    client = GenesysClient(genesys_settings(sim, token_refresh_margin_seconds=300), clock=lambda: now[0])
    conv, part = conversation(acd_end)
    client.patch_participant_attributes(conv, part, {"a": "1"})
    now[0] += 269
    client.patch_participant_attributes(conv, part, {"a": "2"})
    assert sim.token_fetches == 1
    now[0] += 2  # 271 s in: inside the 30 s margin
    client.patch_participant_attributes(conv, part, {"a": "3"})
    assert sim.token_fetches == 2 and len(sim.writes) == 3


def test_token_fetch_is_single_flight_under_concurrency(aws, sim, acd_end):
    sim.set_latency(
        0, token_seconds=0.3
    )  # a slow token endpoint: every thread arrives while the first fetch is in flight
    # Production timeouts: 16 PATCHes land at once, and under a loaded CI one can wait past the tests' 2 s read timeout
    client = GenesysClient(genesys_settings(sim, connect_timeout_seconds=3.05, read_timeout_seconds=10.0))
    conv, part = conversation(acd_end)
    start, errors = threading.Barrier(16), []

    def write(i):
        try:
            start.wait()
            client.patch_participant_attributes(conv, part, {f"k{i}": "v"})
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sim.token_fetches == 1 and len(sim.writes) == 16


# ----------------------------------------------------------------------------- idempotency


def test_a_repeated_dedup_key_never_writes_twice(processor, sim, acd_end, logs):
    first = processor.process(task_payload(acd_end), FakeLambdaContext())
    # A Step Functions retry after a Lambda timeout, then a redrive (same execution, same input).
    again = processor.process(task_payload(acd_end, retry_count=1), FakeLambdaContext())
    redriven = processor.process(task_payload(acd_end, retry_count=0), FakeLambdaContext())

    assert first["outcome"] == "applied"
    assert again["outcome"] == redriven["outcome"] == "duplicate"
    assert again["writtenBy"] == first["writtenBy"] and again["writtenBy"]["retryCount"] == 0
    assert len(sim.writes) == 1
    outcomes = [r["outcome"] for r in logs.records if r.get("message", "").startswith("event ")]
    assert outcomes == ["applied", "duplicate", "duplicate"]
    assert metrics.metric_set["EventsDuplicate"]["Value"] == [1.0, 1.0]


def test_a_cached_result_names_the_execution_that_concluded_it_and_the_one_that_wrote(processor, sim, acd_end, logs):
    # A local replay of a failed execution is a new execution with the same input (no RedriveExecution in moto)
    processor.process(task_payload(acd_end), FakeLambdaContext())
    replay = processor.process(
        task_payload(acd_end, execution_name=acd_end["dedupKey"] + "-replay-1"), FakeLambdaContext()
    )
    assert replay["outcome"] == "duplicate" and replay["writtenBy"]["executionName"] == acd_end["dedupKey"]
    [line] = [r for r in logs.records if r.get("outcome") == "duplicate"]
    # The ledger lets the replay's outcome supersede the failure of the execution it replayed
    assert line["execution_name"] == acd_end["dedupKey"] + "-replay-1"
    assert line["written_by"]["executionName"] == acd_end["dedupKey"]


def test_idempotency_survives_a_cold_start(make_processor, sim, acd_end):
    make_processor().process(task_payload(acd_end))
    clear_token_cache()  # a new container: nothing in memory, only DynamoDB remembers
    assert make_processor().process(task_payload(acd_end))["outcome"] == "duplicate"
    assert len(sim.writes) == 1


def test_idempotency_record_uses_the_powertools_default_schema(processor, acd_end):
    processor.process(task_payload(acd_end))
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert len(items) == 1
    assert items[0]["id"]["S"].startswith("genesys-write-back#") and "expiration" in items[0]
    assert items[0]["status"]["S"] == "COMPLETED"


# ----------------------------------------------------------------------------- invalid input


def test_event_without_participant_is_invalid(processor, sim, acd_end):
    acd_end["participantId"] = None
    with pytest.raises(InvalidEvent, match="participantId"):
        processor.process(task_payload(acd_end))
    assert sim.request_count() == 0


def test_missing_template_field_at_runtime_is_invalid_and_names_it(make_processor, sim, sample_events):
    processor = make_processor(attribute_map={"acd": "{acdOutcome}"})
    customer_end = execution_input(sample_events["customer-end"])  # customer.end carries no acdOutcome
    with pytest.raises(InvalidEvent, match="acdOutcome"):
        processor.process(task_payload(customer_end))
    assert sim.writes == []


@pytest.mark.parametrize(
    "payload, reason",
    [
        ("nope", "JSON object"),
        ({}, "no event"),
        ({"event": {"dedupKey": "x"}}, "missing execution input field"),
    ],
)
def test_malformed_task_payload_is_invalid(processor, payload, reason):
    with pytest.raises(InvalidEvent, match=reason):
        processor.process(payload)


def test_bad_retry_count_is_invalid(processor, acd_end):
    with pytest.raises(InvalidEvent, match="retryCount"):
        processor.process({**task_payload(acd_end), "retryCount": "one"})


# ----------------------------------------------------------------------------- the Lambda handler


@pytest.fixture
def processor_env(aws, sim, monkeypatch):
    from processor import handler

    for name, value in {
        "GENESYS_DOMAIN": "mypurecloud.com",
        "GENESYS_SECRET_NAME": SECRET_NAME,
        "GENESYS_API_BASE_URL": sim.base_url,
        "GENESYS_LOGIN_BASE_URL": sim.base_url,
        "IDEMPOTENCY_TABLE": TABLE,
        "GENESYS_READ_TIMEOUT_SECONDS": "2",
        "ATTRIBUTE_MAP": json.dumps({"aws_processed": "true", "aws_acd_outcome": "{acdOutcome}"}),
        "AWS_LAMBDA_FUNCTION_NAME": "genesys-test-processor",
    }.items():
        monkeypatch.setenv(name, value)
    handler.processor.cache_clear()
    yield handler
    handler.processor.cache_clear()


def test_handler_processes_the_task_payload(processor_env, sim, acd_end, logs):
    result = processor_env.lambda_handler(task_payload(acd_end), FakeLambdaContext())
    assert result["outcome"] == "applied" and result["attributes"] == ["aws_acd_outcome", "aws_processed"]
    conv, part = conversation(acd_end)
    assert sim.attributes_of(conv, part) == {"aws_processed": "true", "aws_acd_outcome": "ANSWERED"}
    applied = logs.with_message("event applied")[0]
    assert applied["conversation_id"] == conv and applied["function_request_id"] == "req-1"
    # Every line names its function, and none repeats the function's ARN (ingestion cost; the log group is the function's)
    assert all(r["function_name"] and "function_arn" not in r for r in logs.records)


def test_handler_raises_the_named_error_for_step_functions(processor_env, sim, acd_end):
    sim.fail_next(1, status=403)
    with pytest.raises(GenesysForbidden):
        processor_env.lambda_handler(task_payload(acd_end), FakeLambdaContext())


def test_handler_settings_error_names_the_bad_placeholder(processor_env, monkeypatch, acd_end):
    from genesys_pipeline.settings import SettingsError

    monkeypatch.setenv("ATTRIBUTE_MAP", json.dumps({"x": "{acdOutcom}"}))
    with pytest.raises(SettingsError, match=r"ATTRIBUTE_MAP attribute 'x'.*acdOutcom"):
        processor_env.lambda_handler(task_payload(acd_end), FakeLambdaContext())
