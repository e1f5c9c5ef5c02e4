"""Concurrent invocations each log with their own keys (issue 14, defect 7; issue 10).

Invocations overlap (one Step Functions execution per event), each in a worker process of its own
(lambda_runtime: one invocation at a time per process, as on Lambda), so the keys an invocation appends
(the Lambda context's request id, the event's dedup key and conversation) never appear on another
invocation's lines: with Powertools' own Logger, no per-thread workaround.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from gcpipe.local.lambda_runtime import RUNTIME
from gcpipe.local.run.lambda_output import LambdaOutput

pytestmark = pytest.mark.e2e

EVENTS = 24


def test_every_log_line_carries_the_keys_of_its_own_invocation(e2e, tmp_path):
    # Given Genesys answering slowly, so that processor invocations overlap
    e2e.sim.set_latency(0.05)
    events = [e2e.event("acd.end") for _ in range(EVENTS)]
    by_key = {}
    log = tmp_path / "lambdas.log"

    # When the events run through the pipeline concurrently, the Lambdas' output going to a file
    with LambdaOutput(log) as output:
        tracked = e2e.send(*events)
        output.ensure()
        e2e.settle()
    for t in tracked:
        by_key[t.dedup_key] = t.envelope["detail"]["eventBody"]["conversationId"]
    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == EVENTS

    # Then every processor line names the request, event and conversation of its own invocation
    processor = e2e.pipeline.outputs["ProcessorFunctionName"]
    invocations = {i["request_id"] for i in RUNTIME.invocations if i["function"] == processor}
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [ln for ln in lines if ln.get("function_name") == processor and "message" in ln]
    assert mine, "no processor log lines captured"
    keys_by_request: dict[str, set] = defaultdict(set)
    for ln in mine:
        assert ln.get("function_request_id") in invocations, ln
        assert ln.get("dedup_key") in by_key, ln
        assert ln.get("conversation_id") == by_key[ln["dedup_key"]], ln  # the conversation of that very event
        keys_by_request[ln["function_request_id"]].add(ln["dedup_key"])
    mixed = {r: k for r, k in keys_by_request.items() if len(k) != 1}
    assert not mixed, f"{len(mixed)} request(s) logged with another invocation's dedup key: {mixed}"
    # each event's lines come from its own invocations, and every applied event has its outcome line
    # (INFO: the logger's level is the first configured in this process, so DEBUG lines may be off)
    assert {ln["dedup_key"] for ln in mine if ln.get("outcome") == "applied"} == set(by_key)
    requests_per_key: dict[str, set] = defaultdict(set)
    for ln in mine:
        requests_per_key[ln["dedup_key"]].add(ln["function_request_id"])
    shared = [
        r
        for k, rs in requests_per_key.items()
        for r in rs
        if any(r in other for k2, other in requests_per_key.items() if k2 != k)
    ]
    assert not shared
