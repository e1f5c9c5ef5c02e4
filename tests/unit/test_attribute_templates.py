"""Attribute templates: checked at cold start, rendered per event (pure logic, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesys_pipeline.errors import InvalidEvent
from genesys_pipeline.model import GenesysEvent
from genesys_pipeline.processing import AttributeTemplate, WriteBackTemplates
from genesys_pipeline.settings import DEFAULT_ATTRIBUTE_MAP, GenesysSettings, ProcessorSettings, SettingsError

GENESYS = GenesysSettings(
    domain="mypurecloud.com", secret_name="s", api_base_url="https://api.x", login_base_url="https://login.x"
)


def settings(attribute_map=None, external_tag=None) -> ProcessorSettings:
    extra = {"attribute_map": attribute_map} if attribute_map is not None else {}
    return ProcessorSettings(genesys=GENESYS, idempotency_table="t", external_tag=external_tag, **extra)


def event(**overrides) -> GenesysEvent:
    values = dict(
        dedup_key="dk-1",
        event_id="e",
        source="aws.partner/genesys.com/cloud/org/x",
        org_id="org",
        topic="v2.detail.events.conversation.{id}.acd.end",
        topic_name="t",
        schema_version="2",
        event_time="2026-11-23T12:13:20.123Z",
        correlation_id="corr",
        conversation_id="conv-1",
        participant_id="part-1",
        queue_id="queue-1",
        fields={"acdOutcome": "ANSWERED", "routingPriority": 0},
    )
    values.update(overrides)
    return GenesysEvent(**values)


def render(attribute_map, ev=None, external_tag=None):
    templates = WriteBackTemplates.from_settings(settings(attribute_map, external_tag))
    return templates.render(ev or event(), execution_name="exec-1", processed_at="2026-11-23T12:14:00.000Z")


def test_default_map_renders_processed_marker_time_and_execution():
    assert render(None).attributes == {
        "aws_processed": "true",
        "aws_processed_at": "2026-11-23T12:14:00.000Z",
        "aws_pipeline_execution": "exec-1",
    }
    assert set(DEFAULT_ATTRIBUTE_MAP) == {"aws_processed", "aws_processed_at", "aws_pipeline_execution"}


def test_every_event_placeholder_renders():
    write = render(
        {
            "all": "{conversationId}|{participantId}|{queueId}|{topic}|{eventTime}|{dedupKey}|{executionName}|{processedAt}"
        }
    )
    assert write.attributes["all"] == (
        "conv-1|part-1|queue-1|v2.detail.events.conversation.{id}.acd.end|"
        "2026-11-23T12:13:20.123Z|dk-1|exec-1|2026-11-23T12:14:00.000Z"
    )


def test_event_fields_render_as_text_including_zero():
    assert render({"o": "{acdOutcome}", "p": "{routingPriority}"}).attributes == {"o": "ANSWERED", "p": "0"}


def test_escaped_braces_are_literal():
    assert render({"j": "{{literal}} {acdOutcome}"}).attributes == {"j": "{literal} ANSWERED"}


def test_external_tag_template():
    assert render({"a": "x"}, external_tag="gc-{queueId}").external_tag == "gc-queue-1"


@pytest.mark.parametrize(
    "template, complaint",
    [
        ("{acdOutcom}", "unknown placeholder {acdOutcom}"),
        ("{ani}", "customer data"),
        ("{externalContactId}", "customer data"),
        ("{}", "positional"),
        ("{0}", "positional"),
        ("{acdOutcome:>10}", "format spec"),
        ("{acdOutcome!r}", "format spec or conversion"),
        ("{acdOutcome", "malformed"),
        ("}", "malformed"),
        ("{event.fields}", "unknown placeholder"),
    ],
)
def test_bad_templates_fail_at_settings_time_naming_the_attribute(template, complaint):
    with pytest.raises(SettingsError, match="ATTRIBUTE_MAP attribute 'bad'") as raised:
        WriteBackTemplates.from_settings(settings({"ok": "true", "bad": template}))
    assert complaint in str(raised.value)


def test_bad_external_tag_fails_at_settings_time():
    with pytest.raises(SettingsError, match="EXTERNAL_TAG"):
        WriteBackTemplates.from_settings(settings(external_tag="{dnis}"))


def test_nothing_to_write_is_a_settings_error():
    with pytest.raises(SettingsError, match="write nothing"):
        WriteBackTemplates.from_settings(settings({}))


def test_a_field_absent_at_runtime_is_an_invalid_event_naming_it():
    with pytest.raises(InvalidEvent, match=r"attribute 'd' needs disconnectType"):
        render({"d": "{disconnectType}"})


def test_participant_attributes_need_a_participant():
    with pytest.raises(InvalidEvent, match="detail.eventBody.participantId"):
        render(None, event(participant_id=None))


def test_a_tag_only_configuration_needs_no_participant():
    write = render({}, event(participant_id=None), external_tag="gc-{conversationId}")
    assert write.attributes == {} and write.external_tag == "gc-conv-1"


@given(st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",))))
def test_literal_text_renders_unchanged(text):
    assert AttributeTemplate.compile("a", text, setting="ATTRIBUTE_MAP attribute").render({}) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_any_template_either_compiles_or_raises_settings_error(text):
    try:
        AttributeTemplate.compile("a", text, setting="ATTRIBUTE_MAP attribute")
    except SettingsError:
        pass
