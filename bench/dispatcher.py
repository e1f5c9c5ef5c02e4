"""Dispatcher fan-out: wall time per SQS batch with a fixed injected StartExecution latency.

The real ``genesys_pipeline.dispatch.Dispatcher.dispatch`` (parse, classify, bounded-concurrency
StartExecution, Powertools partial batch response) on batches of valid, distinct events, with an
``ExecutionStarter`` that sleeps ``latency_ms`` (standing in for the StartExecution round trip).
Concurrent = the concurrency the template gives the dispatcher (START_EXECUTION_CONCURRENCY);
sequential = concurrency 1. Both are run alternately in the same process, ``reps`` batches each.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from . import _common as c

NAME = "dispatcher"


class SleepingStarter:
    def __init__(self, latency: float):
        self.latency = latency
        self.calls = 0
        self._lock = threading.Lock()
        self.names: set[str] = set()

    def start_execution(
        self, name: str, execution_input: str, *, not_before: Any = None, redelivered: bool = False
    ) -> Any:
        from genesys_pipeline.dispatch import StartResult

        time.sleep(self.latency)
        with self._lock:
            self.calls += 1
            fresh = name not in self.names
            self.names.add(name)
        return StartResult.STARTED if fresh else StartResult.ALREADY_EXISTS


class NoDeadLetters:
    def send(self, body: str, attributes: Any) -> None:
        raise AssertionError("a benchmark batch holds only valid events")


def template_concurrency() -> tuple[int, str]:
    try:
        cdk_out, _ = c.cdk_out_dir()
        for r in c.load_template(cdk_out)["Resources"].values():
            p = r.get("Properties", {})
            if r["Type"] == "AWS::Lambda::Function" and str(p.get("Handler", "")).startswith("dispatcher."):
                value = (p.get("Environment") or {}).get("Variables", {}).get("START_EXECUTION_CONCURRENCY")
                if value:
                    return int(value), "template (START_EXECUTION_CONCURRENCY)"
    except Exception:  # noqa: BLE001 - fall back to the settings' default
        pass
    from genesys_pipeline.settings import DispatcherSettings

    return DispatcherSettings.from_env(
        {"STATE_MACHINE_ARN": "x", "DEAD_LETTER_QUEUE_URL": "x", "ALLOWED_TOPICS": "x"}
    ).start_concurrency, "settings default"


def run(smoke: bool = False, latency_ms: float = 50.0, batch_size: int = 10, reps: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    c.ensure_paths()
    c.dummy_aws_env()
    from gcpipe import traffic as gen
    from gcpipe.local.sqs_poller import sqs_lambda_event
    from genesys_pipeline.dispatch import Dispatcher
    from genesys_pipeline.settings import DispatcherSettings

    reps = reps or (3 if smoke else 20)
    concurrency, source = template_concurrency()
    topic = "v2.detail.events.conversation.{id}.acd.end"
    base_env = {
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq",
        "ALLOWED_TOPICS": topic,
    }
    settings = {
        n: DispatcherSettings.from_env({**base_env, "START_EXECUTION_CONCURRENCY": str(n)}) for n in (concurrency, 1)
    }
    import random

    rng = random.Random(3)

    def batch() -> dict[str, Any]:
        msgs = []
        for i in range(batch_size):
            env = gen.make_event("acd.end", rng=rng)
            msgs.append(
                {
                    "MessageId": c.gen_id(),
                    "ReceiptHandle": f"h{i}",
                    "Body": json.dumps(env),
                    "Attributes": {"ApproximateReceiveCount": "1"},
                }
            )
        return sqs_lambda_event(msgs, "arn:aws:sqs:us-east-1:123456789012:bench", "us-east-1")

    samples: dict[int, list[float]] = {concurrency: [], 1: []}
    calls: dict[int, int] = {}
    with c.lambda_output(c.RESULTS_DIR / "dispatcher-lambdas.log.tmp"):
        starters = {n: SleepingStarter(latency_ms / 1000) for n in samples}
        dispatchers = {n: Dispatcher(settings[n], starters[n], NoDeadLetters()) for n in samples}
        for n in samples:  # warm-up (imports, Powertools' first use)
            dispatchers[n].dispatch(batch())
        for _ in range(reps):
            for n in samples:
                event = batch()
                t = time.perf_counter()
                out = dispatchers[n].dispatch(event)
                samples[n].append(time.perf_counter() - t)
                assert out == {"batchItemFailures": []}, out
        calls = {n: s.calls for n, s in starters.items()}
    conc, seq = c.median(samples[concurrency]), c.median(samples[1])
    results = {
        "concurrent": {
            "concurrency": concurrency,
            "median_ms": round(conc * 1000, 1),
            "min_ms": round(min(samples[concurrency]) * 1000, 1),
            "max_ms": round(max(samples[concurrency]) * 1000, 1),
        },
        "sequential": {
            "concurrency": 1,
            "median_ms": round(seq * 1000, 1),
            "min_ms": round(min(samples[1]) * 1000, 1),
            "max_ms": round(max(samples[1]) * 1000, 1),
        },
        "speedup_sequential_over_concurrent": round(seq / conc, 2),
        "ideal_sequential_ms": batch_size * latency_ms,
        "ideal_concurrent_ms": -(-batch_size // concurrency) * latency_ms,
        "start_execution_calls": calls,
    }
    notes = [
        f"Concurrency {concurrency} from the {source}; StartExecution replaced by a {latency_ms:g} ms sleep; "
        "everything else is the shipped dispatch path (parse, dedup key, Powertools batch report, logs to a file)."
    ]
    params = {"latency_ms": latency_ms, "batch_size": batch_size, "reps": reps}
    return c.envelope(NAME, params, results, smoke=smoke, started=started, notes=notes)


def render(result: dict[str, Any]) -> None:
    r = result["results"]
    c.table(
        f"Dispatcher wall time per batch of {result['params']['batch_size']} "
        f"(StartExecution latency {result['params']['latency_ms']:g} ms, {result['params']['reps']} batches each)",
        ["mode", "concurrency", "median ms", "min ms", "max ms", "ideal ms"],
        [
            [
                "concurrent (shipped)",
                r["concurrent"]["concurrency"],
                r["concurrent"]["median_ms"],
                r["concurrent"]["min_ms"],
                r["concurrent"]["max_ms"],
                r["ideal_concurrent_ms"],
            ],
            [
                "sequential (seeds)",
                1,
                r["sequential"]["median_ms"],
                r["sequential"]["min_ms"],
                r["sequential"]["max_ms"],
                r["ideal_sequential_ms"],
            ],
        ],
    )
    c.console().print(f"sequential / concurrent = {r['speedup_sequential_over_concurrent']}x")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def extra(p: Any) -> None:
        p.add_argument("--latency-ms", type=float, dest="latency_ms")
        p.add_argument("--reps", type=int)

    return c.cli(NAME, run, render, argv, extra)


if __name__ == "__main__":
    main()
