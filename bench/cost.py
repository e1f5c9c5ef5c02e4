"""Cost per million events: the shipped design against the seeds' design, one run, one price file.

Measured in this run (the real template on moto, the real handlers, the Genesys simulator):
- state transitions per event, counted from ``get_execution_history`` of real executions of the
  shipped state machine (happy path, one retry, a non-retried failure) and of the seeds' machine
  (Process with Retry on States.TaskFailed and Catch -> HandleError -> Fail), deployed beside it;
- Lambda durations: the in-process handler wall time (warm; the first call is dropped), with the
  simulator answering after an assumed Genesys latency; the seeds' processor fetches a token on
  every invocation (the token cache cleared before each call), so it pays one more round trip;
- CloudWatch Logs bytes per event: what the handlers printed (JSON logs + EMF) per applied event.
Read from the synthesized template (cdk.out): memory, architecture, batch size of every function.
Assumed (parameters, stated in the result): duplicate rate, retry rate, failure rate, SQS and
EventBridge request counts, DynamoDB writes per event.
"""

from __future__ import annotations

import io
import json
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

from . import _common as c

NAME = "cost"
SEED_HANDLE_ERROR_SOURCE = """
def handler(event, context):
    print("error", event.get("Error"))
    return {"logged": True}
"""


# ---------------------------------------------------------------------------- transitions


def count_transitions(history: list[dict[str, Any]]) -> dict[str, int]:
    """Billed transitions of one execution: every state entered, plus every retry attempt.

    AWS bills a Standard workflow per state transition, and counts each Retry attempt as one.
    Here: ``*StateEntered`` events + (task attempts - task entries).
    """
    types = [e["type"] for e in history]
    entered = sum(1 for t in types if t.endswith("StateEntered"))
    task_entries = sum(1 for t in types if t == "TaskStateEntered")
    attempts = sum(1 for t in types if t in ("TaskScheduled", "LambdaFunctionScheduled"))
    retries = max(0, attempts - task_entries)
    return {
        "states_entered": entered,
        "retries": retries,
        "transitions": entered + retries,
        "history_events": len(types),
    }


def seeds_definition(processor_arn: str, handle_error_arn: str) -> dict[str, Any]:
    """The seeds' machine (shared/seeds/003): Process with Retry on TaskFailed (3, x2) and Catch ALL
    -> HandleError; the brief's reading ends it in a Fail state. The Process payload is the shipped
    contract, so the real processor runs (the seed passed ``{"Event.$": "$"}``)."""
    return {
        "Comment": "seeds' design: one Standard execution per event, Catch -> HandleError -> Fail",
        "StartAt": "Process",
        "States": {
            "Process": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": processor_arn,
                    "Payload": {
                        "event.$": "$",
                        "executionName.$": "$$.Execution.Name",
                        "executionArn.$": "$$.Execution.Id",
                        "retryCount.$": "$$.State.RetryCount",
                    },
                },
                "ResultSelector": {"result.$": "$.Payload"},
                "OutputPath": "$.result",
                "Retry": [
                    {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2},
                    {"ErrorEquals": ["ThrottlingException"], "IntervalSeconds": 1, "MaxAttempts": 5, "BackoffRate": 2},
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "HandleError"}],
                "End": True,
            },
            "HandleError": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": handle_error_arn,
                    "Payload": {"Error.$": "$.error.Error", "Event.$": "$"},
                },
                "Next": "Failed",
            },
            "Failed": {"Type": "Fail", "Error": "ProcessingFailed", "Cause": "see HandleError"},
        },
    }


def _zip(source: str, module: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{module}.py", textwrap.dedent(source))
    return buf.getvalue()


def _wait(sfn: Any, arn: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING" or time.monotonic() > deadline:
            return d
        time.sleep(0.02)


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        page = sfn.get_execution_history(**kw)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


# ---------------------------------------------------------------------------- the template


def template_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """handler module ('dispatcher', 'processor', 'error_logger') -> memory, architecture, timeout."""
    out = {}
    for rid, r in template["Resources"].items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        p = r["Properties"]
        handler = str(p.get("Handler", ""))
        key = handler.split(".", 1)[0]
        out[key] = {
            "logical_id": rid,
            "handler": handler,
            "memory_mb": int(p.get("MemorySize", 128)),
            "architecture": (p.get("Architectures") or ["x86_64"])[0],
            "timeout_s": p.get("Timeout"),
            "runtime": p.get("Runtime"),
        }
    return out


def template_batch_size(template: dict[str, Any]) -> int:
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and ":sqs:" in json.dumps(
            r["Properties"].get("EventSourceArn", "sqs")
        ):
            return int(r["Properties"].get("BatchSize", 10))
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            return int(r["Properties"].get("BatchSize", 10))
    return 10


# ---------------------------------------------------------------------------- measurement


class _InvokeTimer:
    """Wraps the in-process Lambda runtime's invoke: wall seconds per call, by function name."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.samples: dict[str, list[float]] = {}
        self._original = runtime.invoke

    def __enter__(self) -> "_InvokeTimer":
        original = self._original

        def timed(fn: Any, payload: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(fn, payload, **kwargs)
            finally:
                self.samples.setdefault(fn.function_name, []).append(time.perf_counter() - t)

        self.runtime.invoke = timed
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runtime.__dict__.pop("invoke", None)


def measure(*, durations_n: int, genesys_latency_ms: float, log_path: Path) -> dict[str, Any]:
    c.ensure_paths()
    from gcpipe.local.lambda_runtime import RUNTIME
    from gcpipe.envelopes import delivered as delivered_envelope
    from gcpipe.local.sqs_poller import sqs_lambda_event

    out: dict[str, Any] = {}
    with c.local_stack(log_path=log_path) as (pipeline, sim, config):
        sfn, lam = pipeline.client("stepfunctions"), pipeline.client("lambda")
        machine = pipeline.outputs["StateMachineArn"]
        fns = pipeline.functions
        processor_arn = fns["ProcessorFunctionName"]["FunctionArn"]
        events = iter(c.make_events(config, 6 + 30 * durations_n + 40 + BUDGET_BURST_EVENTS, seed=11))

        def run_shipped(fault: Any = None) -> dict[str, Any]:
            before = {e["executionArn"] for e in pipeline.executions()}
            if fault:
                fault()
            pipeline.put_events([next(events)])
            assert pipeline.drain(60), "the pipeline did not go idle"
            pipeline.wait_until_idle(30)
            [new] = [e for e in pipeline.executions() if e["executionArn"] not in before]
            return {"status": new["status"], **count_transitions(_history(sfn, new["executionArn"]))}

        # The shipped machine, through the whole pipeline (bus -> rule -> SQS -> dispatcher -> SFN).
        log_before = log_path.stat().st_size if log_path.exists() else 0
        budget_names = _budget_names(pipeline)
        with c.AwsCalls() as steady_calls:  # one event at a time: admission batches of one (the dearest case)
            happy = [run_shipped() for _ in range(3)]
            log_after = log_path.stat().st_size
            shipped = {
                "happy": happy[-1],
                "one_retry": run_shipped(lambda: sim.fail_next(1, status=503)),
                "failed": run_shipped(lambda: sim.fail_next(1, status=400)),
            }
            pipeline.wait_until_idle(30)
        out["log_bytes_per_event"] = round((log_after - log_before) / len(happy))
        out["budget"] = {
            "enabled": "budget_table" in budget_names.values(),
            "steady": _per_event(steady_calls.summary(budget_names), 5),
        }
        if out["budget"]["enabled"]:
            # A burst well over the budget: most events are deferred (re-sent with DelaySeconds) once.
            burst = [next(events) for _ in range(BUDGET_BURST_EVENTS)]
            disp = pipeline.outputs["DispatcherFunctionName"]
            invocations_before = sum(1 for r in list(RUNTIME.invocations) if r["function"] == disp)
            log_before_burst = log_path.stat().st_size
            with c.AwsCalls() as burst_calls:
                pipeline.put_events(burst)
                assert pipeline.drain(300), "the pipeline did not go idle after the budget burst"
                pipeline.wait_until_idle(30)
            out["budget"]["burst"] = _per_event(burst_calls.summary(budget_names), len(burst))
            out["budget"]["burst_events"] = len(burst)
            out["budget"]["burst_dispatcher_invocations_per_event"] = round(
                (sum(1 for r in list(RUNTIME.invocations) if r["function"] == disp) - invocations_before) / len(burst),
                4,
            )
            out["budget"]["burst_log_bytes_per_event"] = round(
                (log_path.stat().st_size - log_before_burst) / len(burst)
            )

        # The seeds' machine, beside it in the same moto, started the seeds' way (no dedup before it).
        iam = pipeline.client("iam")
        role = iam.create_role(
            RoleName="bench-seed",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        handle_error = lam.create_function(
            FunctionName="bench-seed-handle-error",
            Runtime="python3.12",
            Role=role,
            Handler="bench_seed_handle_error.handler",
            Code={"ZipFile": _zip(SEED_HANDLE_ERROR_SOURCE, "bench_seed_handle_error")},
            MemorySize=128,
            Timeout=10,
        )["FunctionArn"]
        seed_arn = sfn.create_state_machine(
            name="bench-seeds-design",
            roleArn=sfn.describe_state_machine(stateMachineArn=machine)["roleArn"],
            definition=json.dumps(seeds_definition(processor_arn, handle_error)),
            type="STANDARD",
        )["stateMachineArn"]

        from genesys_pipeline.dispatch import execution_input
        from genesys_pipeline.events import parse_event

        def fresh_input() -> tuple[str, str]:
            env = delivered_envelope(next(events), c.gen_id(), pipeline.account_id, pipeline.region)
            ev = parse_event(json.dumps(env), org_id=config.org_id)
            return ev.dedup_key, execution_input(ev)

        def run_seed(fault: Any = None) -> dict[str, Any]:
            if fault:
                fault()
            name, data = fresh_input()
            arn = sfn.start_execution(stateMachineArn=seed_arn, name=f"gc-event-{name[:60]}", input=data)[
                "executionArn"
            ]
            d = _wait(sfn, arn)
            return {"status": d["status"], **count_transitions(_history(sfn, arn))}

        seeds = {
            "happy": run_seed(),
            "one_retry": run_seed(lambda: sim.fail_next(1, status=503)),
            "failed": run_seed(lambda: sim.fail_next(8, status=400)),
        }
        pipeline.wait_until_idle(30)
        out["transitions"] = {"shipped": shipped, "seeds": seeds}

        # Durations: the real handlers, invoked one at a time, the simulator slowed to an assumed latency.
        from genesys_pipeline.genesys import oauth

        sim.set_latency(genesys_latency_ms / 1000, token_seconds=genesys_latency_ms / 1000)

        def processor_payload() -> str:
            name, data = fresh_input()
            return json.dumps({"event": json.loads(data), "executionName": name, "executionArn": None, "retryCount": 0})

        def sqs_batch(n: int) -> str:
            msgs = []
            for i in range(n):
                env = delivered_envelope(next(events), c.gen_id(), pipeline.account_id, pipeline.region)
                msgs.append(
                    {
                        "MessageId": c.gen_id(),
                        "ReceiptHandle": f"bench-{i}",
                        "Body": json.dumps(env),
                        "Attributes": {"ApproximateReceiveCount": "1"},
                    }
                )
            return json.dumps(sqs_lambda_event(msgs, pipeline.outputs["MainQueueArn"], pipeline.region))

        def settle() -> None:
            deadline = time.monotonic() + 60
            while not pipeline.state().settled and time.monotonic() < deadline:
                time.sleep(0.01)

        proc_name = pipeline.outputs["ProcessorFunctionName"]
        disp_name = pipeline.outputs["DispatcherFunctionName"]
        # The oauth module the in-process processor runs is the one imported from the asset dir.
        oauth_mod = __import__("sys").modules.get("genesys_pipeline.genesys.oauth", oauth)
        batch = template_batch_size(c.load_template(c.cdk_out_dir()[0]))
        with _InvokeTimer(RUNTIME) as timer:
            lam.invoke(FunctionName=proc_name, Payload=processor_payload())  # warm (import, settings, token)
            cached, per_invocation = [], []
            for _ in range(durations_n):  # interleaved, so both see the same noise
                t0 = len(timer.samples[proc_name])
                lam.invoke(FunctionName=proc_name, Payload=processor_payload())
                cached.extend(timer.samples[proc_name][t0:])
                oauth_mod.clear_token_cache()
                t0 = len(timer.samples[proc_name])
                lam.invoke(FunctionName=proc_name, Payload=processor_payload())
                per_invocation.extend(timer.samples[proc_name][t0:])
            # Dispatcher batches one at a time, each after the executions of the last one settled: in the
            # in-process runtime a dispatcher call waits while processor calls (another environment) run.
            dispatch = []
            for i in range(max(3, durations_n // 3) + 1):
                settle()
                lam.invoke(FunctionName=disp_name, Payload=sqs_batch(batch))
                if i:  # the first call is the warm-up
                    dispatch.append(timer.samples[disp_name][-1])
            settle()
        sim.set_latency(0, token_seconds=0)
        pipeline.drain(60)
        pipeline.wait_until_idle(30)
        out["durations_ms"] = {
            "processor_cached_token": round(c.median(cached) * 1000, 2),
            "processor_token_per_invocation": round(c.median(per_invocation) * 1000, 2),
            "dispatcher_per_batch": round(c.median(dispatch) * 1000, 2),
            "samples": {"processor": len(cached), "dispatcher_batches": len(dispatch)},
        }
        out["batch_size"] = batch
    return out


BUDGET_BURST_EVENTS = 40  # put at once: beyond the dev budget's burst, so most are deferred
BUDGET_COMPONENTS = ("budget_dynamodb", "budget_sqs_resends", "budget_dispatcher_reinvocations", "budget_deferral_logs")


def _budget_names(pipeline: Any) -> dict[str, str]:
    """Queue and table names -> labels for AwsCalls.summary: the main queue and the request budget's table."""
    names = {pipeline.outputs["MainQueueUrl"].rsplit("/", 1)[-1]: "main_queue"}
    table = pipeline.outputs.get("RequestBudgetTableName")
    if table:
        names[table] = "budget_table"
    return names


def _per_event(summary: dict[str, dict[str, int]], events: int) -> dict[str, float]:
    """Requests per event by queue/table and operation; ``<op>.entries`` too for SQS sends (messages sent)."""
    out: dict[str, float] = {}
    for k, v in summary.items():
        if k.startswith(("sqs_other", "dynamodb_other")):
            continue
        out[k] = round(v["requests"] / events, 4)
        if k.startswith("main_queue.send_message"):
            out[f"{k}.entries"] = round(v["entries"] / events, 4)
    return out


def budget_cost(
    measured: dict[str, Any],
    prices: dict[str, float],
    batch: int,
    n: int,
    *,
    dispatcher_memory_gb: float = 0.25,
    dispatcher_gb_s_price: float = 0.0,
) -> dict[str, dict[str, float]]:
    """The request budget's own cost per ``n`` events: its DynamoDB calls (UpdateItem 1 WRU, GetItem 0.5 RRU:
    items < 1 KB, eventually consistent pause checks) and the SQS requests beyond the pipeline's own
    (1 send + receive/batch + delete batch/batch per event): the deferred events' re-sends. Each operation is
    charged at the dearer of the two measured regimes (one event at a time; a burst over the budget)."""
    b = measured.get("budget") or {}
    if not b.get("enabled"):
        return {k: {"units": 0.0, "usd": 0.0} for k in BUDGET_COMPONENTS}
    ops = set(b["steady"]) | set(b.get("burst", {}))
    rate = {op: max(b["steady"].get(op, 0.0), b.get("burst", {}).get(op, 0.0)) for op in ops}
    wru = sum(v for k, v in rate.items() if k.startswith("budget_table.") and not k.endswith(("get_item", "query")))
    # The budget's reads are the pause checks, eventually consistent (0.5 RRU); only a re-read after a write
    # conflict is strongly consistent, and conflicts were rare here (see budget_table.update_item).
    rru = 0.5 * sum(v for k, v in rate.items() if k.startswith("budget_table.") and k.endswith(("get_item", "query")))
    # Re-sends: the main queue's sends beyond EventBridge's one per event, plus, for each message re-sent,
    # its share of a receive and of a delete batch.
    burst = b.get("burst", {})
    sends = burst.get("main_queue.send_message", 0.0) + burst.get("main_queue.send_message_batch", 0.0)
    sent = burst.get("main_queue.send_message.entries", 0.0) + burst.get("main_queue.send_message_batch.entries", 0.0)
    resent = max(0.0, sent - 1)
    resends = max(0.0, sends - 1) + resent * 2 / batch
    ddb_usd = (
        n
        * (wru * prices["dynamodb_on_demand_per_million_wru"] + rru * prices["dynamodb_on_demand_per_million_rru"])
        / 1e6
    )
    # The deferred events' second dispatcher invocation (requests and GB-s at the measured batch duration) and
    # the extra log bytes a deferral writes, both beyond what the happy path already charges.
    extra_invocations = max(0.0, b.get("burst_dispatcher_invocations_per_event", 0.0) - 1 / batch)
    dispatcher_gb_s = extra_invocations * measured["durations_ms"]["dispatcher_per_batch"] / 1000 * dispatcher_memory_gb
    extra_log_gb = max(0.0, b.get("burst_log_bytes_per_event", 0) - measured["log_bytes_per_event"]) / 1e9
    return {
        "budget_dynamodb": {"units": n * (wru + rru), "usd": ddb_usd},
        "budget_sqs_resends": {
            "units": n * resends,
            "usd": n * resends / 1e6 * prices["sqs_standard_per_million_requests"],
        },
        "budget_dispatcher_reinvocations": {
            "units": n * extra_invocations,
            "usd": n
            * (
                extra_invocations * prices["lambda_per_million_requests"] / 1e6
                + dispatcher_gb_s * dispatcher_gb_s_price
            ),
        },
        "budget_deferral_logs": {
            "units": n * extra_log_gb,
            "usd": n * extra_log_gb * prices["cloudwatch_logs_ingestion_per_gb"],
        },
    }


# ---------------------------------------------------------------------------- the model


def model(
    measured: dict[str, Any],
    template: dict[str, Any],
    prices: dict[str, float],
    *,
    duplicate_rate: float,
    retry_rate: float,
    failure_rate: float,
    error_logger_ms: float,
    duration_multiplier: float = 1.0,
) -> dict[str, Any]:
    """Cost per 1,000,000 events delivered by Genesys (a share ``duplicate_rate`` of them redeliveries)."""
    fns = template_functions(template)
    batch = measured["batch_size"]
    dur = measured["durations_ms"]
    tr = measured["transitions"]
    n = 1_000_000
    unique = n * (1 - duplicate_rate)

    def gb_s(fn: str, ms: float, invocations: float) -> float:
        mem = fns[fn]["memory_mb"] / 1024
        billed = max(1.0, round(ms * duration_multiplier + 0.4999))  # billed per 1 ms, rounded up
        return invocations * billed / 1000 * mem

    def lambda_price(fn: str) -> float:
        arch = fns[fn]["architecture"]
        return prices["lambda_arm64_per_gb_second"] if arch == "arm64" else prices["lambda_x86_64_per_gb_second"]

    def transitions_per_execution(design: str) -> float:
        t = tr[design]
        return (
            t["happy"]["transitions"] * (1 - retry_rate - failure_rate)
            + t["one_retry"]["transitions"] * retry_rate
            + t["failed"]["transitions"] * failure_rate
        )

    def attempts_per_execution(design: str) -> float:
        t = tr[design]
        return (
            (1 - retry_rate - failure_rate)
            + (1 + t["one_retry"]["retries"]) * retry_rate
            + (1 + t["failed"]["retries"]) * failure_rate
        )

    common_log_gb = n * measured["log_bytes_per_event"] / 1e9
    designs: dict[str, Any] = {}
    for design in ("shipped", "seeds"):
        executions = unique if design == "shipped" else n  # seeds: every duplicate is a full execution
        attempts = executions * attempts_per_execution(design)
        proc_ms = dur["processor_cached_token"] if design == "shipped" else dur["processor_token_per_invocation"]
        dispatcher_invocations = n / batch
        error_invocations = executions * failure_rate
        comp: dict[str, dict[str, float]] = {}
        comp["eventbridge"] = {"units": n, "usd": n / 1e6 * prices["eventbridge_custom_or_partner_per_million_events"]}
        sqs_requests = n * (
            1 + 2 / batch
        )  # SendMessage by EventBridge per event; Receive + DeleteMessageBatch per batch
        comp["sqs"] = {"units": sqs_requests, "usd": sqs_requests / 1e6 * prices["sqs_standard_per_million_requests"]}
        transitions = executions * transitions_per_execution(design)
        comp["stepfunctions"] = {
            "units": transitions,
            "usd": transitions / 1000 * prices["stepfunctions_standard_per_1k_transitions"],
        }
        requests = dispatcher_invocations + attempts + error_invocations
        comp["lambda_requests"] = {"units": requests, "usd": requests / 1e6 * prices["lambda_per_million_requests"]}
        gbs = {
            "dispatcher": gb_s("dispatcher", dur["dispatcher_per_batch"], dispatcher_invocations),
            "processor": gb_s("processor", proc_ms, attempts),
            "error_logger": gb_s("error_logger", error_logger_ms, error_invocations),
        }
        comp["lambda_duration"] = {"units": sum(gbs.values()), "usd": sum(gbs[f] * lambda_price(f) for f in gbs)}
        # Idempotency (Powertools, DynamoDB): put (IN_PROGRESS) + update (COMPLETED) per applied event;
        # a failed attempt puts and deletes its record. Items < 1 KB: 1 WRU each. The seeds have no table.
        wru = 0.0 if design == "seeds" else executions * 2 * attempts_per_execution(design)
        comp["dynamodb"] = {"units": wru, "usd": wru / 1e6 * prices["dynamodb_on_demand_per_million_wru"]}
        comp["cloudwatch_logs"] = {
            "units": common_log_gb,
            "usd": common_log_gb * prices["cloudwatch_logs_ingestion_per_gb"],
        }
        # The request budget (shipped only; the seeds have none).
        budget = budget_cost(
            measured,
            prices,
            batch,
            n,
            dispatcher_memory_gb=fns["dispatcher"]["memory_mb"] / 1024,
            dispatcher_gb_s_price=lambda_price("dispatcher"),
        )
        for k, v in budget.items():
            comp[k] = v if design == "shipped" else {"units": 0.0, "usd": 0.0}
        total = sum(v["usd"] for v in comp.values())
        designs[design] = {
            "components": {k: {"units": round(v["units"], 3), "usd": round(v["usd"], 4)} for k, v in comp.items()},
            "total_usd_per_million_events": round(total, 4),
            "executions": round(executions),
            "processor_attempts": round(attempts),
            "genesys_writes": round(executions * (1 - failure_rate)),
            "genesys_token_requests": round(attempts) if design == "seeds" else None,
        }
    designs["ratio_seeds_to_shipped"] = round(
        designs["seeds"]["total_usd_per_million_events"] / designs["shipped"]["total_usd_per_million_events"], 3
    )
    return designs


def run(
    smoke: bool = False,
    duplicate_rate: float = 0.05,
    retry_rate: float = 0.05,
    failure_rate: float = 0.001,
    genesys_latency_ms: float = 50.0,
    durations_n: int | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    durations_n = durations_n or (3 if smoke else 30)
    prices_doc = json.loads(c.PRICES_FILE.read_text())
    prices = prices_doc["prices"]
    cdk_out, cdk_source = c.cdk_out_dir()
    template = c.load_template(cdk_out)
    log_path = c.RESULTS_DIR / "cost-lambdas.log.tmp"
    measured = measure(durations_n=durations_n, genesys_latency_ms=genesys_latency_ms, log_path=log_path)
    error_logger_ms = measured["durations_ms"]["dispatcher_per_batch"] / measured["batch_size"] + genesys_latency_ms
    kw = dict(
        duplicate_rate=duplicate_rate, retry_rate=retry_rate, failure_rate=failure_rate, error_logger_ms=error_logger_ms
    )
    designs = model(measured, template, prices, **kw)
    sensitivity = model(measured, template, prices, duration_multiplier=5.0, **kw)
    # Costs are linear in the duplicate rate: where do the two designs cost the same?
    at0 = model(measured, template, prices, **{**kw, "duplicate_rate": 0.0})
    at1 = model(measured, template, prices, **{**kw, "duplicate_rate": 0.5})
    gap0 = at0["seeds"]["total_usd_per_million_events"] - at0["shipped"]["total_usd_per_million_events"]
    gap1 = at1["seeds"]["total_usd_per_million_events"] - at1["shipped"]["total_usd_per_million_events"]
    break_even = round(-gap0 * 0.5 / (gap1 - gap0), 4) if gap1 != gap0 else None
    results = {
        "per_million_events": designs,
        "measured": measured,
        "functions": template_functions(template),
        "sensitivity_lambda_durations_x5": {
            "shipped_usd": sensitivity["shipped"]["total_usd_per_million_events"],
            "seeds_usd": sensitivity["seeds"]["total_usd_per_million_events"],
            "ratio_seeds_to_shipped": sensitivity["ratio_seeds_to_shipped"],
        },
        "break_even_duplicate_rate": break_even,
        "prices": {
            "file": str(c.PRICES_FILE.relative_to(c.ROOT)),
            "as_of": prices_doc["as_of"],
            "status": prices_doc["status"],
        },
    }
    params = {
        "duplicate_rate": duplicate_rate,
        "retry_rate": retry_rate,
        "failure_rate": failure_rate,
        "genesys_latency_ms": genesys_latency_ms,
        "durations_n": durations_n,
        "cdk_out": cdk_source,
    }
    notes = [
        "Per 1,000,000 events delivered by Genesys, of which duplicate_rate are redeliveries of an event already delivered.",
        "Transitions: StateEntered events + retry attempts in get_execution_history of real local executions (moto 5.2.5 ASL).",
        "Shipped: a duplicate is stopped by StartExecution's name (ExecutionAlreadyExists): no transitions, no processor call. "
        "Seeds: the execution name is the SQS message id, so every duplicate is a full execution and a second Genesys write.",
        "Seeds' machine: shared/seeds/003 (Retry States.TaskFailed x3, Catch States.ALL -> HandleError), ending in a Fail "
        "state as the brief reads it; its TaskFailed retrier also retries non-retryable errors (hence its failed-path count).",
        "Lambda durations: warm in-process wall time on this machine with the simulator answering after genesys_latency_ms "
        "(API and token endpoint). A 256 MB Lambda has ~0.15 vCPU, so CPU-bound parts run slower there: see the x5 sensitivity row. "
        "Cold starts are not in the cost (see bench.coldstart). The dispatcher's duration is the shipped one for both designs "
        "and includes moto's in-process StartExecution (each starts an execution thread), so it is pessimistic.",
        f"Error logger / HandleError duration assumed: dispatcher time per event + one Genesys call ({error_logger_ms:.1f} ms).",
        "SQS: 1 SendMessage per event (EventBridge target) + ReceiveMessage and DeleteMessageBatch per batch of "
        "batch_size; the event source mapping's empty long polls are a fixed cost per month, not per event, and left out.",
        "Counting rule: if AWS also bills the execution's start as a transition, add 1 per execution to both designs "
        "(and to every seeds' duplicate).",
        "EventBridge: 1 partner event per delivered event; Step Functions status-change events to the default bus are free.",
        "DynamoDB: Powertools idempotency put + update per processed event (a failed attempt: put + delete); items < 1 KB.",
        "CloudWatch Logs: bytes the handlers printed (JSON logs + EMF) per happy-path event, ingestion price only, "
        "used for both designs. Not modelled: Secrets Manager calls (cached per container), X-Ray, custom metrics per month, "
        "data transfer, free tiers.",
    ]
    return c.envelope(NAME, params, results, smoke=smoke, started=started, notes=notes)


def render(result: dict[str, Any]) -> None:
    r = result["results"]
    d = r["per_million_events"]
    rows = []
    for comp in d["shipped"]["components"]:
        s, b = d["shipped"]["components"][comp], d["seeds"]["components"][comp]
        rows.append([comp, s["units"], s["usd"], b["units"], b["usd"]])
    rows.append(
        [
            "TOTAL USD / 1M events",
            "",
            d["shipped"]["total_usd_per_million_events"],
            "",
            d["seeds"]["total_usd_per_million_events"],
        ]
    )
    c.table(
        f"Cost per 1M events (us-east-1 list prices as of {r['prices']['as_of']}); seeds/shipped = {d['ratio_seeds_to_shipped']}",
        ["component", "shipped units", "shipped $", "seeds units", "seeds $"],
        rows,
    )
    t = r["measured"]["transitions"]
    c.table(
        "State transitions per execution (counted from execution histories)",
        ["path", "shipped", "seeds"],
        [[p, t["shipped"][p]["transitions"], t["seeds"][p]["transitions"]] for p in ("happy", "one_retry", "failed")],
    )
    c.console().print(
        f"break-even duplicate rate (seeds cost = shipped cost): {r['break_even_duplicate_rate']}; "
        f"with Lambda durations x5: seeds/shipped = {r['sensitivity_lambda_durations_x5']['ratio_seeds_to_shipped']}"
    )
    du = r["measured"]["durations_ms"]
    c.table(
        "Measured Lambda durations (ms, median, warm)",
        ["function", "ms"],
        [[k, v] for k, v in du.items() if k != "samples"],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def extra(p: Any) -> None:
        p.add_argument("--duplicate-rate", type=float, dest="duplicate_rate")
        p.add_argument("--retry-rate", type=float, dest="retry_rate")
        p.add_argument("--failure-rate", type=float, dest="failure_rate")
        p.add_argument("--genesys-latency-ms", type=float, dest="genesys_latency_ms")

    return c.cli(NAME, run, render, argv, extra)


if __name__ == "__main__":
    main()
