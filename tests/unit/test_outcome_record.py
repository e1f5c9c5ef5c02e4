"""record_outcome builds a typed OutcomeRecord: the log line is written from it and the sink receives it."""

from __future__ import annotations

import json

import pytest

from genesys_pipeline import outcomes
from genesys_pipeline.observability import record_outcome
from genesys_pipeline.outcomes import Outcome, OutcomeRecord


@pytest.fixture
def sink():
    received: list[OutcomeRecord] = []
    outcomes.set_outcome_sink(received.append)
    yield received
    outcomes.set_outcome_sink(None)


def test_the_record_has_the_typed_identity_and_the_log_line_is_written_from_it(sink, caplog):
    # When a handler records an outcome with its identity and more log fields
    record = record_outcome(
        Outcome.DUPLICATE,
        dedup_key="k1",
        reason="seen",
        topic="v2.t",
        event_id="e1",
        message_id="m1",
        conversation_id="c1",
    )

    # Then the sink got exactly that record, with typed fields
    assert sink == [record]
    assert (record.outcome, record.dedup_key, record.reason, record.event_id, record.message_id) == (
        Outcome.DUPLICATE,
        "k1",
        "seen",
        "e1",
        "m1",
    )
    assert record.fields == {"conversation_id": "c1"}
    # And the log line carries the same fields (what an operator searches for)
    [line] = [r.__dict__ for r in caplog.records if getattr(r, "outcome", None)]
    assert {
        k: line[k] for k in ("outcome", "dedup_key", "reason", "event_id", "message_id", "conversation_id", "topic")
    } == {
        "outcome": "duplicate",
        "dedup_key": "k1",
        "reason": "seen",
        "event_id": "e1",
        "message_id": "m1",
        "conversation_id": "c1",
        "topic": "v2.t",
    }


def test_a_record_survives_json_across_a_process_boundary():
    record = OutcomeRecord(
        Outcome.FAILED,
        "k",
        "GenesysUnavailable",
        execution_arn="arn:x",
        execution_name="k",
        failed_state="Process",
        cause="503",
        fields={"redrive": {"console": "open"}},
    )
    assert OutcomeRecord.from_json(json.loads(json.dumps(record.as_json()))) == record


def test_without_a_sink_nothing_happens_and_a_failing_sink_never_fails_the_event():
    outcomes.set_outcome_sink(None)
    record_outcome(Outcome.STALE, dedup_key="k")

    def broken(_: OutcomeRecord) -> None:
        raise RuntimeError("harness bug")

    outcomes.set_outcome_sink(broken)
    try:
        assert record_outcome(Outcome.STALE, dedup_key="k").outcome is Outcome.STALE
    finally:
        outcomes.set_outcome_sink(None)
