"""``gcpipe local run`` itself, through click (in-process moto, the session's synthesized template)."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from gcpipe import traffic as gen
from gcpipe.cli import cli
from gcpipe.local.ledger import OUTCOMES

pytestmark = pytest.mark.e2e


def _run(args, synthesized, tmp_path):
    result = CliRunner().invoke(
        cli, ["local", "run", "--mode", "in-process", "--cdk-out", str(synthesized), *args], catch_exceptions=False
    )
    return result


def _invariant_holds(summary):
    inv = summary["invariant"]
    assert inv["sent"] == sum(inv[o] for o in OUTCOMES) == inv["accounted"]
    assert inv["holds"] and not inv["unaccounted"] and not inv["more_than_one_outcome"]
    sent = [e for e in summary["events"] if e["outcome"] is not None or e.get("error") is None]
    assert all(e["outcome"] in OUTCOMES for e in sent)
    return inv


def test_generated_mix_json_accounts_for_every_event(synthesized, tmp_path):
    before = {t.ident for t in threading.enumerate()}
    result = _run(["--json", "--count", "6", "--seed", "3"], synthesized, tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    inv = _invariant_holds(summary)
    assert summary["ok"] is True
    assert inv["applied"] >= 6 and inv["duplicate"] >= 2 and inv["filtered"] >= 3 and inv["stale"] == 2
    assert inv["dead_lettered"] == 5, summary["events"]  # malformed x4 + wrong org
    failed_phases = sorted(e["phase"] for e in summary["events"] if e["outcome"] == "failed")
    assert failed_phases == ["outage"], (failed_phases, summary["failed_executions"])
    for e in summary["events"]:
        assert e["event_id"] and e["outcome"]
        if e["outcome"] in ("dead_lettered", "filtered", "stale", "failed"):
            assert e["reason"]
    assert {e["phase"] for e in summary["events"]} == {"main", "storm", "burst", "outage"}
    applied_keys = {e["dedup_key"] for e in summary["events"] if e["outcome"] == "applied"}
    processor_writes = [w for w in summary["genesys"]["writes"] if "aws_processed" in w["body"].get("attributes", {})]
    assert len(processor_writes) == len(applied_keys)  # exactly once per applied event
    assert summary["genesys"]["token_fetches"] >= 1
    [failed] = summary["failed_executions"]
    assert failed["failed_state"] == "Process" and "gcpipe --local redrive" in failed["replay"]
    # The storm's events are applied whether the request budget scheduled them past the 1.5 s storm
    # (no 429 at all) or they met it and were paused and retried.
    assert all(e["outcome"] == "applied" for e in summary["events"] if e["phase"] == "storm")
    # every AWS call the functions made was allowed by their roles in the template (IAM is checked locally)
    assert summary["iam"]["denied"] == []
    assert all({"role", "action", "resource", "policy"} <= set(u) for u in summary["iam"]["unused"])
    # nothing left behind: no poller, simulator or execution thread
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    for t in leftover:
        t.join(5)
    assert not [t.name for t in leftover if t.is_alive()]


def test_events_file_bad_lines_are_reported_by_number_and_the_rest_runs(synthesized, tmp_path):
    source = gen.partner_source()
    good = [gen.acd_end(source=source), gen.customer_end(source=source), gen.attributes_event(source=source)]
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps(good[1]),
        json.dumps({"hello": "world"}),
        json.dumps(good[2]),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = _run(["--json", "--events", str(path)], synthesized, tmp_path)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert [p["line"] for p in summary["input_errors"]] == [2, 4]
    assert "JSON" in summary["input_errors"][0]["error"] and "missing" in summary["input_errors"][1]["error"]
    assert "line 2" in result.stderr and "line 4" in result.stderr
    by_line = {e["line"]: e for e in summary["events"]}
    assert set(by_line) == {1, 3, 5}
    assert by_line[1]["outcome"] == "applied" and by_line[3]["outcome"] == "applied"
    assert by_line[5]["outcome"] == "filtered"  # the attributes topic: the rule keeps it out
    assert _invariant_holds(summary)["sent"] == 3


def test_bad_arguments_are_usage_errors(synthesized, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["local", "run", "--count", "0"]).exit_code == 2
    assert runner.invoke(cli, ["local", "run", "--events", str(tmp_path / "missing.jsonl")]).exit_code == 2
    assert runner.invoke(cli, ["local", "run", "--keep-running", "--mode", "in-process"]).exit_code == 2


def test_unused_permissions_lists_per_role_what_the_template_grants_and_no_call_used(synthesized, tmp_path):
    result = _run(["--count", "2", "--no-faults", "--unused-permissions"], synthesized, tmp_path)
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "granted but never used in this run" in out
    # the processor reads its secret (GetSecretValue) but never describes it: a grant the code does not need
    assert "ProcessingProcessorRole" in out and "secretsmanager:DescribeSecret" in out
    assert "logs:PutLogEvents" not in out  # the Lambda service's own use of the role is not "unused"
