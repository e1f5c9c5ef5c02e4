"""gcpipe failures and gcpipe redrive (local replay path) on moto Step Functions executions."""

from __future__ import annotations

import json
import time

import pytest


def wait_stopped(env, arns):
    sfn = env.client("stepfunctions")
    for _ in range(200):
        if all(sfn.describe_execution(executionArn=a)["status"] != "RUNNING" for a in arns):
            return
        time.sleep(0.02)
    raise AssertionError("executions still running")


@pytest.fixture
def executions(env):
    failed = [env.start_execution(f"key-{i}", fail=True, conversation_id=f"conv-{i}") for i in range(3)]
    ok = env.start_execution("key-ok", fail=False)
    wait_stopped(env, failed + [ok])
    return failed, ok


def test_failures_lists_failed_executions_with_input_error_and_redrivability(env, executions):
    failed, _ = executions
    result = env.invoke("failures", "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(r["execution_arn"] for r in rows) == sorted(failed)
    row = next(r for r in rows if r["name"] == "key-1")
    assert row["status"] == "FAILED"
    assert row["conversation_id"] == "conv-1" and row["dedup_key"] == "key-1"
    assert row["error"] == "GenesysRejected"
    assert "+1317" not in row["cause"] and "***" in row["cause"]  # the customer's number is redacted
    assert row["redrivable"] is True and "new execution" in row["redrive_note"]
    assert row["console_url"] is None  # local: no console


def test_failures_human_table(env, executions):
    result = env.invoke("failures")
    assert result.exit_code == 0
    assert "3 failed execution(s)" in result.output and "GenesysRejected" in result.output


def test_redrive_locally_starts_a_replay_with_the_same_input_and_says_so(env, executions):
    failed, _ = executions
    sfn = env.client("stepfunctions")

    result = env.invoke("redrive", failed[0], "key-2", "--json")

    results = json.loads(result.output)
    assert [r["action"] for r in results] == ["replayed", "replayed"]
    assert all("RedriveExecution is not available locally" in r["detail"] for r in results)
    new = sfn.describe_execution(executionArn=results[0]["new_execution_arn"])
    assert new["name"] == "key-0-replay-1"
    assert json.loads(new["input"]) == json.loads(sfn.describe_execution(executionArn=failed[0])["input"])
    assert result.exit_code == 0

    # A second redrive of the same execution gets the next free name
    wait_stopped(env, [results[0]["new_execution_arn"]])
    again = json.loads(env.invoke("redrive", failed[0], "--json").output)
    assert again[0]["new_execution_arn"].endswith(":key-0-replay-2")

    # failures marks the replayed ones
    rows = {r["name"]: r for r in json.loads(env.invoke("failures", "--json").output)}
    assert "already replayed" in rows["key-0"]["redrive_note"]


def test_redrive_all_failed_dry_run_changes_nothing(env, executions):
    failed, _ = executions
    before = len(
        env.client("stepfunctions").list_executions(stateMachineArn=env.outputs["StateMachineArn"])["executions"]
    )
    result = env.invoke("redrive", "--all-failed", "--since", "1h", "--dry-run", "--json")
    assert result.exit_code == 0
    assert sorted(r["execution_arn"] for r in json.loads(result.output)) == sorted(failed)
    assert {r["action"] for r in json.loads(result.output)} == {"would replay"}
    after = len(
        env.client("stepfunctions").list_executions(stateMachineArn=env.outputs["StateMachineArn"])["executions"]
    )
    assert before == after


def test_redrive_of_a_succeeded_execution_is_a_partial_failure(env, executions):
    _, ok = executions
    result = env.invoke("redrive", ok)
    assert result.exit_code == 1
    assert "SUCCEEDED" in result.output


def test_replay_names_stay_within_80_chars():
    from gcpipe.ops.executions import replay_name

    name = replay_name("k" * 80, 12)
    assert len(name) == 80 and name.endswith("-replay-12")


def test_redrive_all_failed_skips_an_execution_whose_replay_succeeded_unless_forced(env, executions):
    # Given key-0 failed and was since replayed successfully (the cause was fixed)
    failed, _ = executions
    sfn = env.client("stepfunctions")
    replay = env.start_execution("key-0-replay-1", fail=False)
    wait_stopped(env, [replay])

    # When the operator redrives everything that failed, twice
    first = {r["execution_arn"]: r for r in json.loads(env.invoke("redrive", "--all-failed", "--json").output)}
    # Then key-0 is skipped, saying why; the others are replayed
    assert first[failed[0]]["action"] == "skipped"
    assert "key-0-replay-1 succeeded" in first[failed[0]]["detail"] and "--force" in first[failed[0]]["detail"]
    assert {first[a]["action"] for a in failed[1:]} == {"replayed"}
    names = {e["name"] for e in sfn.list_executions(stateMachineArn=env.outputs["StateMachineArn"])["executions"]}
    assert "key-0-replay-2" not in names

    # And --force replays it all the same, under the next free name
    forced = json.loads(env.invoke("redrive", failed[0], "--force", "--json").output)
    assert forced[0]["action"] == "replayed" and forced[0]["new_execution_arn"].endswith(":key-0-replay-2")


def test_redrive_all_failed_replays_an_event_once_when_its_replay_failed_too(env, executions):
    # Given key-1 failed, and so did its first replay (both are listed as failed)
    failed, _ = executions
    [replayed] = json.loads(env.invoke("redrive", failed[1], "--json").output)
    wait_stopped(env, [replayed["new_execution_arn"]])

    # When everything failed is redriven
    results = json.loads(env.invoke("redrive", "--all-failed", "--json").output)

    # Then key-1 gets one new replay, not one per failed execution of it
    for_key_1 = [r for r in results if ":key-1" in r["execution_arn"]]
    assert sorted(r["action"] for r in for_key_1) == ["replayed", "skipped"]
    assert [r["new_execution_arn"].rsplit(":", 1)[-1] for r in for_key_1 if r["action"] == "replayed"] == [
        "key-1-replay-2"
    ]
