"""Schema version migrations: each known legacy shape becomes the current one; unknown versions are refused."""

from __future__ import annotations

import copy

import pytest

from genesys_pipeline.errors import InvalidEvent
from genesys_pipeline.events import parse_event
from genesys_pipeline.migrations import CURRENT_SCHEMA_VERSION, MIGRATIONS, migrate, supported_versions


def as_v1(envelope: dict) -> dict:
    """The modeled legacy shape: eventTime as ISO-8601 text, metadata.correlationId in camelCase."""
    out = copy.deepcopy(envelope)
    detail = out["detail"]
    detail["version"] = "1"
    detail["eventBody"]["eventTime"] = "2025-11-23T13:13:20.123+01:00"  # 1763900000123 ms
    detail["metadata"] = {"correlationId": detail["metadata"]["CorrelationId"]}
    return out


def test_v1_detail_migrates_to_the_current_shape(sample_events):
    # Given a version 1 detail
    legacy = as_v1(sample_events["acd-end"])["detail"]
    before = copy.deepcopy(legacy)
    # When migrated
    current = migrate(legacy, "1")
    # Then it has the current shape, and the input is left untouched
    assert current["version"] == CURRENT_SCHEMA_VERSION
    assert current["eventBody"]["eventTime"] == 1763900000123
    assert current["metadata"] == {"CorrelationId": sample_events["acd-end"]["detail"]["metadata"]["CorrelationId"]}
    assert legacy == before


def test_a_v1_event_parses_to_the_same_event_and_dedup_key_as_its_v2_twin(sample_events):
    v2 = parse_event(sample_events["acd-end"])
    v1 = parse_event(as_v1(sample_events["acd-end"]))
    assert v1 == v2
    assert v1.schema_version == "2"


def test_v1_keeps_a_correlation_id_already_spelled_the_current_way(sample_events):
    legacy = as_v1(sample_events["customer-end"])
    legacy["detail"]["metadata"] = {"CorrelationId": "abc", "correlationId": "other"}
    assert parse_event(legacy).correlation_id == "abc"


@pytest.mark.parametrize(
    ("event_time", "reason"),
    [
        ("yesterday", "detail.eventBody.eventTime must be an ISO-8601 timestamp in schema version 1"),
        ("2025-11-23T12:13:20", "detail.eventBody.eventTime must carry a UTC offset in schema version 1"),
        ("0001-01-01T00:00:00+01:00", "detail.eventBody.eventTime must be an ISO-8601 timestamp in schema version 1"),
    ],
)
def test_v1_with_an_unreadable_event_time_is_rejected(sample_events, event_time, reason):
    legacy = as_v1(sample_events["acd-end"])
    legacy["detail"]["eventBody"]["eventTime"] = event_time
    with pytest.raises(InvalidEvent) as exc:
        parse_event(legacy)
    assert exc.value.reason == reason


def test_v1_with_epoch_milliseconds_already_passes_through(sample_events):
    legacy = as_v1(sample_events["acd-end"])
    legacy["detail"]["eventBody"]["eventTime"] = 1763900000123
    assert parse_event(legacy).event_time == "2025-11-23T12:13:20.123Z"


@pytest.mark.parametrize("version", ["0", "3", "2.1.0", "99"])
def test_an_unknown_version_is_never_guessed_at(sample_events, version):
    with pytest.raises(InvalidEvent) as exc:
        migrate(sample_events["acd-end"]["detail"], version)
    assert exc.value.reason == f"unsupported schema version '{version}' (supported: 1, 2)"


def test_the_current_version_is_returned_as_is(sample_events):
    detail = sample_events["acd-end"]["detail"]
    assert migrate(detail, "2") is detail


def test_every_migration_chain_ends_at_the_current_version():
    assert supported_versions() == ["1", "2"]
    for version, migration in MIGRATIONS.items():
        assert migration.source == version and migration.summary
        seen = {version}
        target = migration.target
        while target != CURRENT_SCHEMA_VERSION:
            assert target in MIGRATIONS and target not in seen
            seen.add(target)
            target = MIGRATIONS[target].target
