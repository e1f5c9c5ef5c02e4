"""Throughput under a Genesys limit: a burst through the local pipeline with the simulator at L requests/s.

The real template on moto (in-process), the real handlers, background SQS pollers standing in for
Lambda's event source mapping; the simulator's API allows ``limit`` requests per 1 s fixed window
and answers 429 + Retry-After above it. A burst of ``events`` distinct events (several times
L x 60) is put on the partner bus at once. ASL Retry waits run at ``retry_time_scale`` of real
time (1.0 = real: the simulator's limit is in real time, so a compressed backoff would not be a
faithful test). Then, in the same run, the seeds' state machine (Retry States.TaskFailed x3, x2
backoff; Catch -> HandleError -> Fail) gets the same burst, started directly (the seeds' dispatcher
starts one execution per message, nothing more), with the same processor.

Reported: applied events/s as a fraction of L (from first to last write), 429s, the most executions
RUNNING at once and the most concurrent processor invocations (sampled), events not applied and not
accounted as failed/dead-lettered (lost: must be 0), duplicate writes (must be 0).
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

from . import _common as c

NAME = "throughput"


class _Sampler(threading.Thread):
    def __init__(self, sfn: Any, machine: str, period: float = 0.25):
        super().__init__(daemon=True)
        self.sfn, self.machine, self.period = sfn, machine, period
        self.max_running = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                n, token = 0, None
                while True:
                    kw = {"stateMachineArn": self.machine, "statusFilter": "RUNNING", "maxResults": 1000}
                    if token:
                        kw["nextToken"] = token
                    page = self.sfn.list_executions(**kw)
                    n += len(page["executions"])
                    token = page.get("nextToken")
                    if not token:
                        break
                self.max_running = max(self.max_running, n)
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                pass
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class _Concurrency:
    """Most concurrent in-process invocations per function (wraps the runtime's invoke)."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.current: Counter = Counter()
        self.peak: Counter = Counter()
        self._lock = threading.Lock()

    def __enter__(self) -> "_Concurrency":
        original = self.runtime.invoke

        def counted(fn: Any, payload: Any) -> Any:
            with self._lock:
                self.current[fn.function_name] += 1
                self.peak[fn.function_name] = max(self.peak[fn.function_name], self.current[fn.function_name])
            try:
                return original(fn, payload)
            finally:
                with self._lock:
                    self.current[fn.function_name] -= 1

        self.runtime.invoke = counted
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runtime.__dict__.pop("invoke", None)


def _writes_summary(sim: Any, conversations: set[str], attribute_keys: set[str], since: int) -> dict[str, Any]:
    writes = [w for w in sim.writes[since:] if w.conversation_id in conversations and isinstance(w.body, dict)
              and attribute_keys & set((w.body.get("attributes") or {}))]
    per = Counter(w.conversation_id for w in writes)
    times = sorted(w.time for w in writes)
    return {"applied": len(per), "duplicate_writes": sum(n - 1 for n in per.values()),
            "first_write": times[0] if times else None, "last_write": times[-1] if times else None}


def _rate(s: dict[str, Any], start: float, limit: float) -> dict[str, Any]:
    span = (s["last_write"] - start) if s["last_write"] else None
    eps = s["applied"] / span if span else 0.0
    return {"seconds_to_last_write": round(span, 2) if span else None, "applied_per_second": round(eps, 3),
            "fraction_of_limit": round(eps / limit, 3)}


def run(smoke: bool = False, limit: float | None = None, events: int | None = None, retry_time_scale: float = 1.0,
        timeout: float | None = None, baseline: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    limit = limit or (10.0 if smoke else 2.0)
    events = events or (30 if smoke else int(2 * limit * 60))
    timeout = timeout or (120.0 if smoke else 1800.0)
    c.ensure_paths()
    from gcpipe.local.lambda_runtime import RUNTIME

    from .cost import _zip, SEED_HANDLE_ERROR_SOURCE, seeds_definition

    results: dict[str, Any] = {}
    with c.local_stack(retry_time_scale=retry_time_scale, log_path=c.RESULTS_DIR / "throughput-lambdas.log.tmp") as (
            pipeline, sim, config):
        sfn = pipeline.session.client("stepfunctions", region_name=pipeline.region)
        keys = set(config.attribute_map)
        burst = c.make_events(config, events, seed=21)
        conversations = {e["detail"]["eventBody"]["conversationId"] for e in burst}
        machine = pipeline.outputs["StateMachineArn"]
        sim.set_rate_limit(limit)
        sampler = _Sampler(sfn, machine)
        with _Concurrency(RUNTIME) as conc:
            sampler.start()
            pipeline.start_pollers()
            t0 = time.time()
            pipeline.put_events(burst)
            idle = pipeline.wait_until_idle(timeout)
            sampler.stop()
            pipeline.stop_pollers()
        s = _writes_summary(sim, conversations, keys, 0)
        failed = len(pipeline.executions("FAILED"))
        dlq = len(pipeline.queue_messages("DeadLetterQueueUrl"))
        results["shipped"] = {
            "idle_before_timeout": idle, "events": events, **s, **_rate(s, t0, limit),
            "http_429": sim.request_count("/api/", status=429),
            "api_requests": sim.request_count("/api/"),
            "token_fetches": sim.token_fetches,
            "max_running_executions": sampler.max_running,
            "max_concurrent_processor_invocations": conc.peak.get(pipeline.outputs["ProcessorFunctionName"], 0),
            "failed_executions": failed, "dead_lettered": dlq,
            "lost": events - s["applied"] - failed - dlq,
        }

        if baseline:
            sim.set_rate_limit(None)
            sim.reset()
            lam = pipeline.client("lambda")
            iam = pipeline.client("iam")
            role = iam.create_role(RoleName="bench-seed-tp", AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                        "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
            handle_error = lam.create_function(FunctionName="bench-seed-tp-handle-error", Runtime="python3.12", Role=role,
                                               Handler="bench_seed_tp_handle_error.handler",
                                               Code={"ZipFile": _zip(SEED_HANDLE_ERROR_SOURCE, "bench_seed_tp_handle_error")},
                                               MemorySize=128, Timeout=10)["FunctionArn"]
            processor_arn = pipeline.functions["ProcessorFunctionName"]["FunctionArn"]
            seed_machine = sfn.create_state_machine(
                name="bench-seeds-throughput", roleArn=sfn.describe_state_machine(stateMachineArn=machine)["roleArn"],
                definition=json.dumps(seeds_definition(processor_arn, handle_error)), type="STANDARD")["stateMachineArn"]
            from gcpipe.local.runner import delivered_envelope
            from genesys_pipeline.dispatch import execution_input
            from genesys_pipeline.events import parse_event

            burst2 = c.make_events(config, events, seed=22)
            conversations2 = {e["detail"]["eventBody"]["conversationId"] for e in burst2}
            inputs = []
            for e in burst2:
                ev = parse_event(json.dumps(delivered_envelope(e, c.gen_id(), pipeline.account_id, pipeline.region)),
                                 org_id=config.org_id)
                inputs.append((ev.dedup_key, execution_input(ev)))
            sim.set_rate_limit(limit)
            sampler = _Sampler(sfn, seed_machine)
            with _Concurrency(RUNTIME) as conc:
                sampler.start()
                t0 = time.time()
                arns = [sfn.start_execution(stateMachineArn=seed_machine, name=f"gc-event-{c.gen_id()}", input=data)["executionArn"]
                        for _, data in inputs]
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and sfn.list_executions(stateMachineArn=seed_machine, statusFilter="RUNNING")["executions"]:
                    time.sleep(0.2)
                sampler.stop()
            s2 = _writes_summary(sim, conversations2, keys, 0)
            statuses = Counter(sfn.describe_execution(executionArn=a)["status"] for a in arns)
            handled = sum(1 for a in arns if any(ev["type"] == "FailStateEntered" for ev in
                                                 sfn.get_execution_history(executionArn=a, maxResults=1000)["events"]))
            results["seeds"] = {
                "events": events, **s2, **_rate(s2, t0, limit),
                "http_429": sim.request_count("/api/", status=429),
                "api_requests": sim.request_count("/api/"),
                "max_running_executions": sampler.max_running,
                "max_concurrent_processor_invocations": conc.peak.get(pipeline.outputs["ProcessorFunctionName"], 0),
                "statuses": dict(statuses),
                "caught_by_handle_error": handled,
                # The seeds' HandleError only logs: an event it caught is not applied, and with the seed's own
                # End (no Fail state) its execution even SUCCEEDS. Counted as lost.
                "lost": events - s2["applied"],
            }
            sim.set_rate_limit(None)
    params = {"limit_per_second": limit, "events": events, "burst_multiple_of_limit_x60": round(events / (limit * 60), 2),
              "retry_time_scale": retry_time_scale, "timeout_s": timeout}
    notes = [
        f"L = {limit:g} requests/s and {events} events ({events / (limit * 60):g} x L x 60): scaled down from L=5 and a "
        "burst of 3 x 300 so a run fits on 2 cores; each event is one PATCH, so L/s is the best possible applied rate.",
        f"ASL Retry waits at {retry_time_scale:g} x real time; the processor's inline Retry-After waits are real time.",
        "Local differences from AWS: the processor's reserved concurrency is not enforced by the in-process Lambda runtime "
        "(so more executions call Genesys at once than on AWS), and moto runs each execution in a thread.",
        "Seeds baseline: the seeds' state machine with the shipped processor (so the processor's inline Retry-After waits "
        "help it too); 'lost' = not applied: HandleError only logs.",
    ]
    return c.envelope(NAME, params, results, smoke=smoke, started=started, notes=notes)


def render(result: dict[str, Any]) -> None:
    r = result["results"]
    p = result["params"]
    fields = ["events", "applied", "applied_per_second", "fraction_of_limit", "seconds_to_last_write", "http_429",
              "max_running_executions", "max_concurrent_processor_invocations", "lost", "duplicate_writes"]
    designs = [d for d in ("shipped", "seeds") if d in r]
    c.table(f"Burst of {p['events']} events, Genesys limited to {p['limit_per_second']:g} req/s "
            f"(retry time scale {p['retry_time_scale']:g})", ["metric", *designs],
            [[f, *[r[d].get(f) for d in designs]] for f in fields])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def extra(p: Any) -> None:
        p.add_argument("--limit", type=float)
        p.add_argument("--events", type=int)
        p.add_argument("--retry-time-scale", type=float, dest="retry_time_scale")
        p.add_argument("--timeout", type=float)

    return c.cli(NAME, run, render, argv, extra)


if __name__ == "__main__":
    main()
