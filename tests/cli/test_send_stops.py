"""gcpipe send: blank lines are skipped; Ctrl-C and an unreachable endpoint stop the run and say
what was accepted, where the audit log is and how to resume (issue 14, defects 4, 8, 9)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import EndpointConnectionError

from gcpipe import traffic
from gcpipe.ops import send as send_ops
from gcpipe.ops.validation import load_parser

from .conftest import ORG_ID, QUEUE_ID

SOURCE = traffic.partner_source(ORG_ID)


def lines_of(n: int, seed: int = 5) -> list[str]:
    return [
        traffic.TrafficItem("event", e).line()
        for e in traffic.generate(n, topics=("acd.end",), queue_ids=(QUEUE_ID,), source=SOURCE, rng=random.Random(seed))
    ]


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_blank_lines_anywhere_are_skipped_not_rejected(env, tmp_path):
    # Given events with blank lines at the start, in the middle (spaces, CRLF) and a trailing one
    events = lines_of(12)
    text = "\n" + "\n".join(events[:5]) + "\n   \n\r\n" + "\n".join(events[5:]) + "\n\n"
    path = tmp_path / "events.jsonl"
    path.write_text(text)
    audit = tmp_path / "audit.jsonl"

    # When they are sent
    result = env.invoke("send", str(path), "--audit-log", str(audit), "--json")

    # Then every event is accepted, the blank lines are counted as skipped, and the exit status is 0
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["accepted"], summary["rejected"], summary["blank_lines"]) == (12, 0, 4)
    assert Counter(r["status"] for r in audit_records(audit)) == {"accepted": 12}


class _InterruptedAfter:
    """Input lines; the operator presses Ctrl-C once ``n`` lines have been read."""

    def __init__(self, lines: list[str], n: int):
        self.lines, self.n = lines, n

    def __iter__(self) -> Iterator[tuple[int, str, None]]:
        for number, text in enumerate(self.lines, start=1):
            if number > self.n:
                raise KeyboardInterrupt
            yield number, text, None


def test_ctrl_c_during_send_says_what_was_accepted_where_the_audit_log_is_and_how_to_resume(env, tmp_path, monkeypatch):
    # Given a file of 95 events, and Ctrl-C pressed after 45 lines were read
    events = lines_of(95)
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(events) + "\n")
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setattr(send_ops, "read_lines", lambda file: _InterruptedAfter(events, 45))

    # When it is sent
    result = env.invoke("send", str(path), "--audit-log", str(audit))

    # Then the run stops with exit 1 (no "Aborted!"), and says what it did, where the record is, how to resume
    assert result.exit_code == 1, result.output
    assert "Aborted" not in result.output
    records = audit_records(audit)
    accepted = [r for r in records if r["status"] == "accepted"]
    assert len(records) == 45  # every line read has its record: accepted, or failed "not sent: interrupted"
    assert all(r["status"] == "accepted" or "interrupted" in r["reason"] for r in records)
    stopped = [ln for ln in result.stderr.splitlines() if ln.startswith("gcpipe send: interrupted")]
    assert len(stopped) == 1
    assert f"{len(accepted)} line(s) accepted of 45 read" in stopped[0]
    assert str(audit) in stopped[0] and f"gcpipe --local send {path}" in stopped[0]
    assert "re-sending is safe" in stopped[0] and "duplicates" in stopped[0]
    # And exactly what the audit log calls accepted is on the main queue
    bodies = {m["Body"] for m in env.queue_messages(env.outputs["MainQueueUrl"])}
    assert bodies == {events[r["line"] - 1] for r in accepted}

    # And re-sending the whole file is safe: the same dedup keys, which the dispatcher absorbs
    parse, _ = load_parser()
    assert {parse(b).dedup_key for b in bodies} <= {parse(e).dedup_key for e in events}


class _RefusingSqs:
    """An SQS endpoint that accepted ``accept`` batches, then went away (connection refused)."""

    def __init__(self, real: Any, accept: int, clock: list[float]):
        self._real, self._accept, self._clock = real, accept, clock
        self.refused = 0

    def send_message_batch(self, **kw: Any) -> dict[str, Any]:
        if self._accept > 0:
            self._accept -= 1
            return self._real.send_message_batch(**kw)
        self.refused += 1
        self._clock[0] += 0.5  # each refused attempt takes (simulated) time
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")


def test_a_refused_connection_stops_send_after_the_grace_period_not_after_every_retry(env, tmp_path):
    # Given an endpoint that takes 3 batches, then refuses every connection, and 200 lines to send
    clock = [0.0]
    sqs = _RefusingSqs(env.client("sqs"), accept=3, clock=clock)
    audit_path = tmp_path / "audit.jsonl"
    audit = send_ops.AuditLog(audit_path)
    parse, _ = load_parser()
    sender = send_ops.Sender(
        sqs=sqs,
        queue_url=env.outputs["MainQueueUrl"],
        parser=parse,
        matcher=None,
        audit=audit,
        concurrency=1,
        sleep=lambda s: None,
        clock=lambda: clock[0],
        endpoint="http://127.0.0.1:1",
        retry=send_ops.RetryPolicy(max_attempts=6, unreachable_after=5.0),
    )
    events = lines_of(200)

    # When it sends
    report = sender.run((n, text, None) for n, text in enumerate(events, start=1))
    audit.close()

    # Then it stopped once connections had failed for the grace period: ~10 attempts, not 170 lines x 6
    assert report.stopped == send_ops.UNREACHABLE
    assert "http://127.0.0.1:1 unreachable" in report.stop_detail
    assert sqs.refused <= 12
    assert report.counts[send_ops.ACCEPTED] == 30
    # And what it read is in the audit log: accepted, or failed with the reason; the rest was not read
    records = audit_records(audit_path)
    assert Counter(r["status"] for r in records)["accepted"] == 30
    assert all("unreachable" in r["reason"] for r in records if r["status"] == "failed")
    assert len(records) < 200


def test_the_unreachable_line_is_one_line_with_the_count_and_the_audit_log(env, tmp_path, monkeypatch):
    # Given an endpoint that is gone from the start (the local stack was stopped)
    clock = [0.0]
    monkeypatch.setattr(send_ops, "sqs_client", lambda target: _RefusingSqs(target.client("sqs"), 0, clock))
    monkeypatch.setattr(send_ops.ConnectionWatch, "__init__", _watch_on(clock))
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines_of(30)) + "\n")
    audit = tmp_path / "audit.jsonl"

    result = env.invoke("send", str(path), "--audit-log", str(audit), "--no-progress")

    assert result.exit_code == 1
    assert result.stdout == ""  # no table: the one line says it all
    assert result.stderr.startswith("send to ")  # the header, then one line for the stop
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("gcpipe send:")]
    assert result.stderr.rstrip().endswith(line)
    assert line.startswith("gcpipe send: stopped: ") and "unreachable (connection refused for 5 s)" in line
    assert "0 line(s) accepted before that" in line and str(audit) in line


def _watch_on(clock: list[float]) -> Any:
    original = send_ops.ConnectionWatch.__init__

    def init(self: Any, grace_seconds: float, clock_fn: Any = None) -> None:
        original(self, grace_seconds, lambda: clock[0])

    return init


@pytest.fixture(autouse=True)
def _no_backoff_waits(monkeypatch):
    monkeypatch.setattr(send_ops.RetryPolicy, "delay", lambda self, attempt, rng: 0.0)
