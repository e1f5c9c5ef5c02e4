"""The chaos soak (``gcpipe.chaos``) in ``make test``: one small seeded run of the whole local pipeline under
faults at every seam; and each AWS-side seam on its own, fired by the worker hook (``gcpipe.local.faults``)
inside the real worker processes, with what the pipeline must make of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gcpipe.chaos.plan import aws_rules
from gcpipe.local.faults import PLAN_VARIABLE
from gcpipe.local.lambda_runtime import RUNTIME

pytestmark = pytest.mark.e2e

CHAOS_EVENTS, CHAOS_SEED = 200, 11


def test_a_seeded_chaos_run_keeps_every_event_accounted_for_and_writes_nothing_twice(synthesized, tmp_path):
    from gcpipe.chaos.run import ChaosOptions, ChaosRun

    started = time.monotonic()
    report = ChaosRun(
        ChaosOptions(events=CHAOS_EVENTS, seed=CHAOS_SEED, cdk_out=synthesized, run_dir=tmp_path, quiet_timeout=90)
    ).run()
    data = report.as_json()
    detail = json.dumps(data, indent=1)
    print(f"chaos {CHAOS_EVENTS} events seed {CHAOS_SEED}: {time.monotonic() - started:.1f} s", data["faults_injected"])
    assert data["sent"] == CHAOS_EVENTS, detail
    assert data["invariant"]["holds"], detail
    assert data["lost"] == 0, detail
    assert data["duplicate_writes"] == 0, detail
    assert data["failed_after_redrive"] == 0, detail
    assert data["ok"], detail
    # Every Genesys fault kind is scheduled in the first waves; delivery faults come with the traffic.
    faults = data["faults_injected"]
    assert {"genesys-429-storm", "genesys-5xx-burst", "genesys-read-timeout", "genesys-connection-reset"} <= set(faults)
    assert faults["sqs-redelivery"] > 0 and faults["duplicate-delivery"] > 0
    assert sum(n for kind, n in faults.items() if not kind.startswith("genesys-")) > 0, detail


def _install(tmp_path: Path, kind: str, **changes) -> Path:
    [rule] = [r for r in aws_rules(1.0) if r["kind"] == kind]
    rule.update(probability=1.0, limit=1, **changes)
    (tmp_path / "tokens").mkdir()
    log = tmp_path / "faults.log"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seed": 1, "log": str(log), "tokens": str(tmp_path / "tokens"), "rules": [rule]}))
    RUNTIME.worker_hooks = ["gcpipe.local.faults:install_from_env"]
    RUNTIME.worker_environment = {PLAN_VARIABLE: str(plan)}
    return log


def _task_errors(e2e) -> list[str]:
    sfn = e2e.pipeline.client("stepfunctions")
    errors = []
    for execution in e2e.executions():
        events = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        errors += [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    return errors


@pytest.mark.parametrize(
    "kind",
    ["idempotency-throttle", "idempotency-5xx", "idempotency-connection-error", "secrets-throttle", "secrets-5xx"],
)
def test_a_transient_fault_of_the_processors_aws_dependencies_is_retried_and_applied_once(e2e, tmp_path, kind):
    log = _install(tmp_path, kind)
    sent = e2e.send(e2e.event("acd.end"), e2e.event("customer.end"))
    e2e.settle()
    assert log.read_text().splitlines() == [kind]  # it fired, once, in a processor worker
    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == len(sent)
    assert _task_errors(e2e) == ["AwsDependencyUnavailable"]  # the state machine retried it by name
    assert len(e2e.processor_writes()) == len(sent)


def test_a_throttled_start_execution_is_redelivered_by_sqs_and_applied_once(e2e, tmp_path):
    log = _install(tmp_path, "start-execution-throttle")
    sent = e2e.send(e2e.event("acd.end"), e2e.event("acd.end"))
    e2e.settle()
    assert log.read_text().splitlines() == ["start-execution-throttle"]
    acc = e2e.assert_accounted()
    assert acc.counts["applied"] == len(sent) and acc.counts["duplicate"] == 0


def test_a_failed_dlq_send_leaves_the_record_to_sqs_and_it_is_dead_lettered_once(e2e, tmp_path):
    from gcpipe import traffic as gen

    log = _install(tmp_path, "dlq-send-failed")
    e2e.send(gen.unsupported_version(e2e.event("acd.end")))
    e2e.settle()
    assert log.read_text().splitlines() == ["dlq-send-failed"]
    acc = e2e.assert_accounted()
    assert acc.counts["dead_lettered"] == 1
    assert len(e2e.dead_letter_messages()) == 1


def test_a_dispatcher_that_dies_after_part_of_its_batch_gives_each_event_one_outcome(e2e, tmp_path):
    log = _install(tmp_path, "dispatcher-crash-mid-batch")
    sent = e2e.send(*[e2e.event("acd.end") for _ in range(5)])
    e2e.settle()
    assert log.read_text().splitlines() == ["dispatcher-crash-mid-batch"]
    acc = e2e.assert_accounted()  # the redelivered records whose executions it had started: no extra duplicate
    assert acc.counts["applied"] == len(sent) and acc.counts["duplicate"] == 0
    assert len(e2e.processor_writes()) == len(sent)
