"""Throughput under a Genesys limit: two designs, two workloads, one run.

Designs (the same template but for ``genesysRateLimit`` in cdk.json, synthesized for this run):
- ``baseline``: ``genesysRateLimit: null``, no request budget: every processor calls Genesys as soon as it
  is invoked and the state machine's backoff handles the 429s (the design before issue 9);
- ``budgeted``: ``genesysRateLimit: {"requestsPerSecond": L, "burst": B}``, the environment-wide budget.

The simulator limits the org to L API requests per second over a sliding window (60 s by default: Genesys
states its limits per minute), beside its per-token limit (300/min), and answers 429 with Retry-After as
Genesys does. Each (design, workload) gets a fresh stack on moto (in-process) and a fresh simulator; the
real handlers run in worker processes (one per function instance), with each function's reserved concurrency
enforced as Lambda does.

Workloads:
- ``burst``: ``burst_multiple`` x L x 60 distinct events (3 minutes of quota) put on the partner bus at once;
- ``sustained``: events arriving at ``arrival_multiple`` x L per second (1.5 L) for ``sustained_seconds``
  (300 s) of real time, each made at its arrival time (its event time is when it arrived).

ASL Retry waits run at ``retry_time_scale`` of real time (1.0: the simulator's limit is in real time, so a
compressed backoff would not be faithful). A run stops at ``deadline_factor`` x its ideal time (events / L,
from the first event); executions still running then are stopped and counted ``unfinished``.

Per design and workload (``designs.<design>.<workload>``): applied, lost (not applied and not accounted as
failed, dead-lettered or unfinished), duplicate_writes, fraction_of_limit (applied per second from the first
event to the last write, / L), genesys_requests, http_429, share_429, lag_p50_s / lag_p99_s (event time to
its first write), executions_failed, dead_lettered, token_fetches, and what explains them (Lambda throttles,
peak concurrency, SQS re-sends, the budget's DynamoDB calls, requests per second).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from . import _common as c

NAME = "throughput"
DESIGNS = ("baseline", "budgeted")
WORKLOADS = ("burst", "sustained")
MIN_DEADLINE_S = 30.0  # a tiny (smoke) workload still gets time for the stack's cold start


def budget_setting(design: str, limit: float, burst: int, alarm_share: float) -> dict[str, Any] | None:
    """The cdk.json ``genesysRateLimit`` of a design (the interface agreed with the budget's side)."""
    if design == "baseline":
        return None
    return {"requestsPerSecond": limit, "burst": burst, "alarmShare429": alarm_share}


class _RunningSampler(threading.Thread):
    """The most executions RUNNING at once (sampled)."""

    def __init__(self, sfn: Any, machine: str, period: float = 1.0):
        super().__init__(daemon=True)
        self.sfn, self.machine, self.period = sfn, machine, period
        self.max_running = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                n = sum(
                    len(p["executions"])
                    for p in self.sfn.get_paginator("list_executions").paginate(
                        stateMachineArn=self.machine, statusFilter="RUNNING"
                    )
                )
                self.max_running = max(self.max_running, n)
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                pass
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _write_outcomes(sim: Any, event_times: dict[str, float], attribute_keys: set[str]) -> dict[str, Any]:
    """Applied events (a write with the configured attributes to the event's conversation), duplicates, lags."""
    first: dict[str, float] = {}
    count: dict[str, int] = {}
    for w in sim.writes:
        if (
            w.conversation_id in event_times
            and isinstance(w.body, dict)
            and attribute_keys & set(w.body.get("attributes") or {})
        ):
            count[w.conversation_id] = count.get(w.conversation_id, 0) + 1
            first[w.conversation_id] = min(first.get(w.conversation_id, w.time), w.time)
    lags = [t - event_times[conv] for conv, t in first.items()]
    return {
        "applied": len(first),
        "duplicate_writes": sum(n - 1 for n in count.values()),
        "last_write": max(first.values()) if first else None,
        "lags": lags,
    }


def _queue_depth(pipeline: Any, key: str) -> int:
    a = pipeline.client("sqs").get_queue_attributes(QueueUrl=pipeline.outputs[key], AttributeNames=["All"])[
        "Attributes"
    ]
    return sum(
        int(a.get(k, 0))
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def _settled(pipeline: Any) -> bool:
    return bool(pipeline.state().idle)


def measure(
    *,
    design: str,
    workload: str,
    cdk_out: Path,
    limit: float,
    events: int,
    arrival_rate: float,
    admission: float | None,
    org_window: float,
    org_window_kind: str,
    retry_time_scale: float,
    deadline_s: float,
    log_path: Path,
) -> dict[str, Any]:
    """One (design, workload) on a fresh stack and simulator."""
    from gcpipe.local.lambda_runtime import RUNTIME

    sim_args = {
        "org_rate_limit_per_second": limit,
        "org_rate_window_seconds": org_window,
        "org_rate_window_kind": org_window_kind,
    }
    with c.local_stack(retry_time_scale=retry_time_scale, cdk_out=cdk_out, simulator=sim_args, log_path=log_path) as (
        pipeline,
        sim,
        config,
    ):
        sfn = pipeline.client("stepfunctions")
        machine = pipeline.outputs["StateMachineArn"]
        keys = set(config.attribute_map)
        functions = {
            pipeline.outputs[k]: k.replace("FunctionName", "").lower()
            for k in ("DispatcherFunctionName", "ProcessorFunctionName", "ErrorLoggerFunctionName")
        }
        names = {
            pipeline.outputs[k].rsplit("/", 1)[-1]: label
            for k, label in (("MainQueueUrl", "main_queue"), ("DeadLetterQueueUrl", "dead_letter_queue"))
        }
        names[pipeline.outputs["IdempotencyTableName"]] = "idempotency_table"
        budget_table = next((v for k, v in pipeline.outputs.items() if "Budget" in k and "Table" in k), None)
        if budget_table:
            names[budget_table] = "budget_table"
        event_times: dict[str, float] = {}
        sampler = _RunningSampler(sfn, machine)
        with c.AwsCalls() as calls:
            sampler.start()
            pipeline.start_pollers()
            t_first = time.time()
            if workload == "burst":
                batch = c.make_events(config, events, seed=21)
                for e in batch:
                    event_times[e["detail"]["eventBody"]["conversationId"]] = (
                        e["detail"]["eventBody"]["eventTime"] / 1000
                    )
                t_first = min(event_times.values())
                pipeline.put_events(batch)
            else:
                import random

                from gcpipe import traffic as gen

                rng = random.Random(22)
                queue = config.queue_ids[0] if config.queue_ids else gen.SAMPLE_QUEUE_ID
                for i in range(events):  # one event every 1/arrival_rate s, each made when it arrives
                    due = t_first + i / arrival_rate
                    time.sleep(max(0.0, due - time.time()))
                    e = gen.make_event("acd.end", queue_id=queue, source=config.bus_name, rng=rng)
                    event_times[e["detail"]["eventBody"]["conversationId"]] = (
                        e["detail"]["eventBody"]["eventTime"] / 1000
                    )
                    pipeline.put_events([e])
                t_first = min(event_times.values())
            deadline = t_first + deadline_s
            idle = False
            while time.time() < deadline:
                if _settled(pipeline):
                    idle = True
                    break
                time.sleep(1.0)
            sampler.stop()
            pipeline.stop_pollers()
            t_end = time.time()
            running = [e["executionArn"] for e in pipeline.executions("RUNNING")]
            outcomes = _write_outcomes(sim, event_times, keys)
            per_second = sim.requests_per_second()
            api_requests = sim.request_count("/api/")
            http_429 = sim.request_count("/api/", status=429)
            token_fetches = sim.token_fetches
            closed_badly = [e for s in ("FAILED", "TIMED_OUT", "ABORTED") for e in pipeline.executions(s)]
            failed = len(closed_badly)
            failure_errors: dict[str, int] = {}
            for e in closed_badly:
                failure_errors[e.get("error") or e["status"]] = failure_errors.get(e.get("error") or e["status"], 0) + 1
            dead_lettered = _queue_depth(pipeline, "DeadLetterQueueUrl")
            waiting_in_queue = _queue_depth(pipeline, "MainQueueUrl")
            conc = RUNTIME.concurrency.snapshot()
            from gcpipe.local.stepfunctions import STATUS_EVENTS

            STATUS_EVENTS.enabled = False  # the bench's own stops are not failures for the error logger to mark
            for arn in running:  # stop what the deadline left, so no thread of this run outlives its stack
                try:
                    sfn.stop_execution(executionArn=arn, error="BenchDeadline", cause="the benchmark's deadline passed")
                except Exception:  # noqa: BLE001 - it may have just finished
                    pass
        applied = outcomes["applied"]
        unfinished = len(running) + waiting_in_queue
        span = (outcomes["last_write"] - t_first) if outcomes["last_write"] else None
        rate = applied / span if span else 0.0
        peak = max((r.requests for r in per_second), default=0)
        return {
            "events": events,
            "applied": applied,
            "lost": events - applied - failed - dead_lettered - unfinished,
            "duplicate_writes": outcomes["duplicate_writes"],
            "fraction_of_limit": round(rate / limit, 3),
            "genesys_requests": api_requests,
            "http_429": http_429,
            "share_429": round(http_429 / api_requests, 4) if api_requests else 0.0,
            "lag_p50_s": _round(percentile(outcomes["lags"], 0.50)),
            "lag_p99_s": _round(percentile(outcomes["lags"], 0.99)),
            "executions_failed": failed,
            "failure_errors": failure_errors,
            "dead_lettered": dead_lettered,
            "token_fetches": token_fetches,
            # what explains the figures
            "idle_before_deadline": idle,
            "unfinished": unfinished,
            "seconds_to_last_write": _round(span),
            "applied_per_second": round(rate, 3),
            "ideal_seconds": round(events / limit, 1),
            "budget_admission_per_second": admission,
            "wall_seconds": round(t_end - t_first, 1),
            "genesys_peak_requests_per_second": peak,
            "max_running_executions": sampler.max_running,
            "peak_concurrency": {functions.get(k, k): v for k, v in conc.peak.items()},
            "lambda_throttles": {functions.get(k, k): v for k, v in conc.throttled.items()},
            "aws_calls": calls.summary(names),
            "genesys_per_second": [[r.second - int(t_first), r.requests, r.http_429] for r in per_second],
        }


def _admission_rate(cdk_out: Path) -> float | None:
    """The rate the synthesized dispatcher's budget admits at (under requestsPerSecond); None without a budget.

    Read before any stack runs: the local runtime owns the handlers' modules while one does."""
    template = c.load_template(cdk_out)
    env = next(
        r["Properties"]["Environment"]["Variables"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "Dispatcher" in k
    )
    if "REQUEST_BUDGET_TABLE" not in env:
        return None
    from genesys_pipeline.budget import admission_rate
    from genesys_pipeline.settings import BudgetSettings

    s = BudgetSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)} | {"REQUEST_BUDGET_TABLE": "t"})
    assert s is not None  # REQUEST_BUDGET_TABLE is set
    return round(
        admission_rate(
            s.requests_per_second, s.burst, window_seconds=s.window_seconds, send_spread_seconds=s.send_spread_seconds
        ),
        4,
    )


def _round(v: float | None) -> float | None:
    return round(v, 2) if v is not None else None


def run(
    smoke: bool = False,
    limit: float | None = None,
    designs: str = ",".join(DESIGNS),
    workloads: str = ",".join(WORKLOADS),
    burst_multiple: float | None = None,
    arrival_multiple: float = 1.5,
    sustained_seconds: float | None = None,
    budget_burst: int = 1,
    org_window: float | None = None,
    org_window_kind: str = "sliding",
    retry_time_scale: float | None = None,
    deadline_factor: float = 1.6,
) -> dict[str, Any]:
    started = time.perf_counter()
    limit = limit or (4.0 if smoke else 1.0)
    burst_multiple = burst_multiple or (1 / 30 if smoke else 3.0)
    sustained_seconds = sustained_seconds or (2.0 if smoke else 300.0)
    org_window = org_window or (2.0 if smoke else 60.0)
    retry_time_scale = retry_time_scale if retry_time_scale is not None else (0.05 if smoke else 1.0)
    c.ensure_paths()
    from gcpipe.local.run import RunnerError

    chosen = [d for d in designs.split(",") if d]
    kinds = [w for w in workloads.split(",") if w]
    for name in chosen:
        if name not in DESIGNS:
            raise SystemExit(f"unknown design {name!r}; expected {', '.join(DESIGNS)}")
    for name in kinds:
        if name not in WORKLOADS:
            raise SystemExit(f"unknown workload {name!r}; expected {', '.join(WORKLOADS)}")
    sizes = {
        "burst": max(1, round(burst_multiple * limit * 60)),
        "sustained": max(1, round(arrival_multiple * limit * sustained_seconds)),
    }
    ideal = {w: sizes[w] / limit for w in WORKLOADS}
    assemblies: dict[str, Path] = {}
    unavailable: dict[str, str] = {}
    for name in chosen:
        out = c.ROOT / ".local-run" / f"bench-{name}" / "cdk.out"
        try:
            assemblies[name] = c.synth_with({"genesysRateLimit": budget_setting(name, limit, budget_burst, 0.02)}, out)
        except RunnerError as exc:
            unavailable[name] = str(exc).splitlines()[-1]
    admissions = {name: _admission_rate(cdk_out) for name, cdk_out in assemblies.items()}
    results: dict[str, dict[str, Any]] = {name: {} for name in assemblies}
    # Interleaved (burst of each design, then sustained of each) so machine drift falls on both.
    for workload in kinds:
        for name, cdk_out in assemblies.items():
            c.console().print(
                f"[dim]{name} / {workload}: {sizes[workload]} events, deadline {max(MIN_DEADLINE_S, deadline_factor * ideal[workload]):.0f} s[/dim]"
            )
            results[name][workload] = measure(
                design=name,
                workload=workload,
                cdk_out=cdk_out,
                limit=limit,
                events=sizes[workload],
                arrival_rate=arrival_multiple * limit,
                admission=admissions[name],
                org_window=org_window,
                org_window_kind=org_window_kind,
                retry_time_scale=retry_time_scale,
                deadline_s=max(MIN_DEADLINE_S, deadline_factor * ideal[workload]),
                log_path=c.RESULTS_DIR / "throughput-lambdas.log.tmp",
            )
    params = {
        "limit_per_second": limit,
        "org_window_seconds": org_window,
        "org_window_kind": org_window_kind,
        "token_limit_per_minute": 300,
        "burst_events": sizes["burst"],
        "burst_multiple_of_limit_x60": burst_multiple,
        "sustained_events": sizes["sustained"],
        "sustained_arrival_per_second": arrival_multiple * limit,
        "sustained_seconds": sustained_seconds,
        "budget": budget_setting("budgeted", limit, budget_burst, 0.02),
        "retry_time_scale": retry_time_scale,
        "deadline_factor": deadline_factor,
    }
    notes = [
        f"L = {limit:g} requests/s: the workloads' durations do not depend on L (the burst is {burst_multiple:g} minutes "
        f"of quota, the arrival lasts {sustained_seconds:g} s), only their event counts do, so L was scaled down (issue: "
        "L = 5, a burst of >= 900) to keep the local runtime's own CPU (moto's execution threads, the Lambdas' worker processes) "
        "off the critical path on 2 shared cores. Each event is one PATCH, so L events/s is the best possible rate.",
        f"Simulator: org-wide limit of L x {org_window:g} API requests per {org_window:g} s ({org_window_kind} window; "
        "Genesys does not document which, sliding is the stricter; rejected requests spend no quota), per-token limit "
        "300/min; 429 with Retry-After and too.many.requests.retry.after.",
        "Budgeted: genesysRateLimit = L with the burst in params.budget; baseline: genesysRateLimit = null (no budget). "
        "The budget admits at budget_admission_per_second = (L x 60 - burst) / (60 + send spread), under L, so that "
        "requests reaching Genesys up to the spread after their slot still fit its 60 s window (docs/request-budget.md).",
        "DynamoDB conditional writes are atomic locally as on AWS (gcpipe.local.dynamodb; moto's are not: two dispatchers "
        "were handed the same budget slots, which the measurements before 2026-12-02 include).",
        "Reserved concurrency is enforced by the local Lambda runtime (processor: the template's), so throttles are "
        "Lambda.TooManyRequestsException in the state machine, as on AWS.",
        f"ASL Retry waits at {retry_time_scale:g} x real time; the processor's inline Retry-After waits are real time. "
        f"A run stops at {deadline_factor:g} x events / L after its first event; what still runs is 'unfinished' (stopped), "
        "not 'lost'.",
        "lost = events - applied - executions_failed - dead_lettered - unfinished; lag = first write - event time.",
        "aws_calls: SQS and DynamoDB requests the stack made (per queue/table and operation; 'entries' = messages or "
        "items); non-empty receives only.",
    ]
    notes += [f"design {name} not run: {why}" for name, why in unavailable.items()]
    result = c.envelope(
        NAME,
        params,
        {"designs_run": list(results), "workloads_run": kinds, "unavailable": unavailable},
        smoke=smoke,
        started=started,
        notes=notes,
    )
    result["designs"] = results
    return result


FIELDS = (
    "events",
    "applied",
    "lost",
    "duplicate_writes",
    "fraction_of_limit",
    "genesys_requests",
    "http_429",
    "share_429",
    "lag_p50_s",
    "lag_p99_s",
    "executions_failed",
    "dead_lettered",
    "unfinished",
    "token_fetches",
    "seconds_to_last_write",
    "max_running_executions",
)


def render(result: dict[str, Any]) -> None:
    d = result["designs"]
    p = result["params"]
    columns = [(name, w) for w in WORKLOADS for name in DESIGNS if w in d.get(name, {})]
    c.table(
        f"L = {p['limit_per_second']:g} req/s (org window {p['org_window_seconds']:g} s); burst of {p['burst_events']}, "
        f"sustained {p['sustained_arrival_per_second']:g}/s for {p['sustained_seconds']:g} s",
        ["metric", *[f"{n} {w}" for n, w in columns]],
        [[f, *[d[n][w].get(f) for n, w in columns]] for f in FIELDS],
    )
    for why in result["results"].get("unavailable", {}).items():
        c.console().print(f"[yellow]not run: {why[0]}: {why[1]}[/yellow]")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def extra(p: Any) -> None:
        p.add_argument("--limit", type=float, help="L, requests per second (default 1)")
        p.add_argument("--designs", help=f"comma-separated subset of {','.join(DESIGNS)}")
        p.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
        p.add_argument(
            "--burst-multiple", type=float, dest="burst_multiple", help="burst events = this x L x 60 (default 3)"
        )
        p.add_argument(
            "--sustained-seconds", type=float, dest="sustained_seconds", help="arrival duration (default 300)"
        )
        p.add_argument(
            "--budget-burst", type=int, dest="budget_burst", help="genesysRateLimit.burst of the budgeted design"
        )
        p.add_argument("--org-window", type=float, dest="org_window", help="simulator org-limit window, s (default 60)")
        p.add_argument(
            "--org-window-kind",
            dest="org_window_kind",
            choices=("sliding", "fixed"),
            help="simulator org-limit window: sliding (default) or fixed (resets on multiples of it)",
        )
        p.add_argument("--retry-time-scale", type=float, dest="retry_time_scale")
        p.add_argument("--deadline-factor", type=float, dest="deadline_factor")

    return c.cli(NAME, run, render, argv, extra)


if __name__ == "__main__":
    main()
