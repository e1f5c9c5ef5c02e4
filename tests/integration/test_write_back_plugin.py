"""The write-back plugin (WRITE_BACK_PLUGIN) in the real processor: DynamoDB idempotency in moto, the Genesys simulator.

Test plugins are written to a temporary folder added to the ``extensions`` package's search path, so they
are imported exactly as the shipped ones are (``extensions.<module>``), and never ship in the asset.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

import extensions
from genesys_pipeline.errors import GenesysUnavailable, WriteBackPluginError
from genesys_pipeline.genesys import GenesysClient
from genesys_pipeline.observability import metrics
from genesys_pipeline.processing import Processor
from genesys_pipeline.settings import ProcessorSettings, SettingsError

from .test_processor import (  # noqa: F401  (fixtures)
    TABLE,
    FakeLambdaContext,
    LogCapture,
    aws,
    conversation,
    execution_input,
    fresh_caches,
    genesys_settings,
    logs,
    sim,
    sleeps,
    task_payload,
)

RECORDING_PLUGIN = """
from genesys_pipeline.write_back import WriteBackRequest

SEEN = []

def write_back(event):
    SEEN.append(event)
    if event.fields.get("acdOutcome") == "ABANDONED":
        return None
    return WriteBackRequest(attributes={"aws_outcome": str(event.fields.get("acdOutcome")),
                                        "aws_wrapup": str(event.fields.get("wrapupCode"))},
                            external_tag="tag-" + event.conversation_id)

def buggy(event):
    return {"attributes": {}}["missing"]

def wrong_type(event):
    return {"aws_processed": "true"}

def not_strings(event):
    return WriteBackRequest(attributes={"count": 3})

def genesys_down(event):
    raise GenesysUnavailable("enrichment backend unavailable")
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "extensions"
    folder.mkdir()
    (folder / "recording.py").write_text(
        textwrap.dedent(RECORDING_PLUGIN).replace(
            "from genesys_pipeline.write_back import WriteBackRequest",
            "from genesys_pipeline.errors import GenesysUnavailable\nfrom genesys_pipeline.write_back import WriteBackRequest",
        )
    )
    (folder / "broken_import.py").write_text("import a_module_nobody_installed\n")
    monkeypatch.setattr(extensions, "__path__", [*extensions.__path__, str(folder)])
    yield folder
    for name in [m for m in sys.modules if m.startswith("extensions.")]:
        del sys.modules[name]


@pytest.fixture
def make_plugin_processor(aws, sim, sleeps, plugin_dir):
    def make(plugin: str) -> Processor:
        genesys = genesys_settings(sim)
        settings = ProcessorSettings(genesys=genesys, idempotency_table=TABLE, write_back_plugin=plugin)
        return Processor(settings, GenesysClient(genesys, sleep=sleeps))

    return make


@pytest.fixture
def acd_end(sample_events):
    sample_events["acd-end"]["detail"]["eventBody"]["wrapupCode"] = "SALE"
    # A worst case: the execution input still carries customer data; the plugin must not see it.
    return execution_input(sample_events["acd-end"], keep_sensitive=True)


def test_the_plugin_decides_what_is_written_and_sees_every_kept_field_but_no_customer_data(
    make_plugin_processor, sim, acd_end, logs
):
    result = make_plugin_processor("recording:write_back").process(task_payload(acd_end), FakeLambdaContext())

    conv, part = conversation(acd_end)
    assert result["outcome"] == "applied" and result["attributes"] == ["aws_outcome", "aws_wrapup"]
    assert sim.attributes_of(conv, part) == {"aws_outcome": "ANSWERED", "aws_wrapup": "SALE"}
    assert sim.external_tag_of(conv) == f"tag-{conv}"
    seen = sys.modules["extensions.recording"].SEEN
    assert len(seen) == 1
    assert seen[0].topic_suffix == "acd.end" and seen[0].execution_name == acd_end["dedupKey"]
    assert not {"ani", "dnis", "externalContactId"} & set(seen[0].fields)
    with pytest.raises(TypeError):
        seen[0].fields["ani"] = "tel:+1"  # read-only


def test_none_skips_the_event_with_its_own_outcome_metric_and_log_line(make_plugin_processor, sim, sample_events, logs):
    sample_events["acd-end"]["detail"]["eventBody"]["acdOutcome"] = "ABANDONED"
    event = execution_input(sample_events["acd-end"])
    result = make_plugin_processor("recording:write_back").process(task_payload(event), FakeLambdaContext())

    assert result["outcome"] == "skipped" and result["attributes"] == []
    assert sim.writes == []
    assert metrics.metric_set["EventsSkipped"]["Value"] == [1.0]
    skipped = logs.with_message("event skipped")
    assert len(skipped) == 1 and skipped[0]["dedup_key"] == event["dedupKey"]
    assert "recording:write_back returned None" in skipped[0]["reason"]


def test_a_retry_after_a_landed_write_neither_calls_the_plugin_nor_writes_again(
    make_plugin_processor, sim, acd_end, logs
):
    processor = make_plugin_processor("recording:write_back")
    first = processor.process(task_payload(acd_end), FakeLambdaContext())
    # The Step Functions retry of an attempt whose write landed but whose Lambda timed out; then a redrive;
    # then a new container (cold start: only DynamoDB remembers).
    again = processor.process(task_payload(acd_end, retry_count=1), FakeLambdaContext())
    redriven = processor.process(task_payload(acd_end), FakeLambdaContext())
    cold = make_plugin_processor("recording:write_back").process(task_payload(acd_end), FakeLambdaContext())

    assert first["outcome"] == "applied"
    assert again["outcome"] == redriven["outcome"] == cold["outcome"] == "duplicate"
    assert len(sim.writes_for(acd_end["conversationId"])) == 2  # one PATCH + one PUT, once
    assert len(sys.modules["extensions.recording"].SEEN) == 1


def test_a_failed_write_is_decided_again_and_written_on_the_retry(make_plugin_processor, sim, acd_end):
    processor = make_plugin_processor("recording:write_back")
    sim.fail_next(1, status=503)
    with pytest.raises(GenesysUnavailable):
        processor.process(task_payload(acd_end))
    assert processor.process(task_payload(acd_end, retry_count=1))["outcome"] == "applied"
    assert len([w for w in sim.writes if w.method == "PATCH"]) == 1


def test_a_plugin_bug_fails_at_process_and_is_redrivable(make_plugin_processor, sim, acd_end):
    with pytest.raises(WriteBackPluginError, match=r"write-back plugin recording:buggy raised KeyError: 'missing'"):
        make_plugin_processor("recording:buggy").process(task_payload(acd_end))
    assert sim.writes == []
    # Fixed and redeployed: the redrive (same input, same dedup key) is not blocked by a stale idempotency record.
    assert make_plugin_processor("recording:write_back").process(task_payload(acd_end))["outcome"] == "applied"


@pytest.mark.parametrize(
    "function, message",
    [
        (
            "wrong_type",
            r"write-back plugin recording:wrong_type \(lambdas/extensions/recording.py\) returned dict; "
            r"expected WriteBackRequest \(genesys_pipeline.write_back\) or None to skip",
        ),
        ("not_strings", r"recording:not_strings .* returned attributes that are not a mapping of non-empty str to str"),
    ],
)
def test_a_wrong_return_type_fails_with_a_message_naming_the_module(
    make_plugin_processor, sim, acd_end, function, message
):
    with pytest.raises(WriteBackPluginError, match=message):
        make_plugin_processor(f"recording:{function}").process(task_payload(acd_end))
    assert sim.writes == []


def test_a_named_pipeline_error_from_the_plugin_keeps_its_name_and_retry_policy(make_plugin_processor, acd_end):
    with pytest.raises(GenesysUnavailable):
        make_plugin_processor("recording:genesys_down").process(task_payload(acd_end))


@pytest.mark.parametrize(
    "plugin, message",
    [
        ("nowhere:write_back", r"^WRITE_BACK_PLUGIN nowhere:write_back: no module lambdas/extensions/nowhere.py"),
        ("recording:absent", r"^WRITE_BACK_PLUGIN recording:absent: extensions.recording defines no function 'absent'"),
        (
            "broken_import:f",
            r"^WRITE_BACK_PLUGIN broken_import:f: importing extensions.broken_import failed: "
            r"No module named 'a_module_nobody_installed'",
        ),
        ("recording", r"^WRITE_BACK_PLUGIN: 'recording' is not 'module:function'"),
    ],
)
def test_a_plugin_that_does_not_load_fails_the_first_invocation_with_one_line(make_plugin_processor, plugin, message):
    with pytest.raises(SettingsError, match=message) as caught:
        make_plugin_processor(plugin)
    assert "\n" not in str(caught.value)


def test_the_shipped_example_writes_acd_end_and_skips_other_topics(make_plugin_processor, sim, sample_events):
    processor = make_plugin_processor("acd_summary:write_back")
    body = sample_events["acd-end"]["detail"]["eventBody"]
    body.update(acdOutcome="ABANDONED", connectedDurationMs=185_000)
    acd = execution_input(sample_events["acd-end"])
    customer = execution_input(sample_events["customer-end"])

    assert processor.process(task_payload(acd))["outcome"] == "applied"
    assert processor.process(task_payload(customer))["outcome"] == "skipped"

    conv, part = conversation(acd)
    written = sim.attributes_of(conv, part)
    assert written["aws_acd_outcome"] == "ABANDONED" and written["aws_connected_minutes"] == "3"
    assert written["aws_processed"] == "true" and written["aws_pipeline_execution"] == acd["dedupKey"]
    assert sim.external_tag_of(conv) == "abandoned"
    assert [w.method for w in sim.writes] == ["PATCH", "PUT"]  # the acd.end's only: customer.end wrote nothing
