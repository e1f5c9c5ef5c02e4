"""Example write-back plugin: a call summary on acd.end, nothing for other topics.

    "writeBack": {"plugin": "acd_summary:write_back"}

* acd.end: the usual processed markers, the ACD outcome, and the connected time in whole
  minutes (a computed value no template can express); an abandoned call also gets the
  external tag ``abandoned`` (a condition);
* every other topic: ``None``, so the event is counted ``skipped`` and nothing is written.

It only reads ``event.fields`` (the dispatcher's allowlisted fields): a plugin never sees
``ani``, ``dnis`` or other customer data. It is deterministic: the processor calls it inside
the idempotent section, so a retry after a landed write never reaches it.
"""

from __future__ import annotations

from genesys_pipeline.write_back import WriteBackEvent, WriteBackRequest

ABANDONED_TAG = "abandoned"


def write_back(event: WriteBackEvent) -> WriteBackRequest | None:
    if event.topic_suffix != "acd.end":
        return None
    attributes = {
        "aws_processed": "true",
        "aws_processed_at": event.processed_at,
        "aws_pipeline_execution": event.execution_name,
    }
    outcome = event.fields.get("acdOutcome")
    if isinstance(outcome, str) and outcome:
        attributes["aws_acd_outcome"] = outcome
    connected_ms = event.fields.get("connectedDurationMs")
    if isinstance(connected_ms, (int, float)) and not isinstance(connected_ms, bool) and connected_ms >= 0:
        attributes["aws_connected_minutes"] = str(round(connected_ms / 60_000))
    return WriteBackRequest(attributes=attributes, external_tag=ABANDONED_TAG if outcome == "ABANDONED" else None)
