"""Shared plumbing of the benchmarks: machine facts, result files, rich tables, the local stack.

Every benchmark module has ``run(smoke=False, **params) -> dict`` (the result, JSON-ready)
and ``main(argv)``; ``python -m bench.<name> [--smoke] [--out DIR]`` runs one,
``python -m bench`` runs them all. Results go to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from gcpipe.names import stack_name

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
LAMBDAS_DIR = ROOT / "lambdas"
PRICES_FILE = BENCH_DIR / "prices_us_east_1.json"
ENV = "dev"
STACK = stack_name(ENV)
CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"


def ensure_paths() -> None:
    """The handlers' code (lambdas/) and the project root on sys.path, as pytest's pythonpath does."""
    for p in (str(LAMBDAS_DIR), str(ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)


def dummy_aws_env() -> None:
    """Never reach a real AWS account from a benchmark."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "GenesysEventPipeline",
    }.items():
        os.environ[k] = v


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def envelope(
    name: str,
    params: dict[str, Any],
    results: dict[str, Any],
    *,
    smoke: bool,
    started: float,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "benchmark": name,
        "command": f"python -m bench.{name}" + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "date": now_iso(),
        "machine": machine(),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "params": params,
        "results": results,
        "notes": notes or [],
    }


def write_result(result: dict[str, Any], out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result['benchmark']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    console().print(t)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.1f}"
        if abs(v) >= 1:
            return f"{v:.3f}"
        return f"{v:.4g}"
    return str(v)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def cli(
    name: str,
    run: Callable[..., dict[str, Any]],
    render: Callable[[dict[str, Any]], None],
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], object] | None = None,
) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--smoke", action="store_true", help="a small, fast run (the smoke test's size)")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    if extra:
        extra(parser)
    args = vars(parser.parse_args(argv))
    smoke, out = args.pop("smoke"), args.pop("out")
    params = {k: v for k, v in args.items() if v is not None}
    result = run(smoke=smoke, **params)
    render(result)
    path = write_result(result, out)
    console().print(f"[dim]wrote {path}[/dim]")
    return result


# ---------------------------------------------------------------------------- the local stack


def cdk_out_dir() -> tuple[Path, str]:
    """The cloud assembly to run: cdk.out when it holds the stack, else a fresh synth (bundling skipped)."""
    ensure_paths()
    override = os.environ.get("GCPIPE_BENCH_CDK_OUT")
    if override:
        return Path(override), f"GCPIPE_BENCH_CDK_OUT={override}"
    default = ROOT / "cdk.out"
    if (default / f"{STACK}.template.json").exists():
        return default, "cdk.out (python -m infra.synth_all)"
    from gcpipe.local.run.synth import ensure_synthesized

    out = ensure_synthesized(ENV)  # .local-run/cdk.out, synthesized when missing or stale
    return out, ".local-run/cdk.out (gcpipe local run synth, bundling skipped)"


def load_template(cdk_out: Path) -> dict[str, Any]:
    return json.loads((cdk_out / f"{STACK}.template.json").read_text())


@contextlib.contextmanager
def lambda_output(path: Path) -> Iterator[Any]:
    """The in-process Lambdas' log lines and EMF blobs go to ``path`` (as the local runner does)."""
    ensure_paths()
    from gcpipe.local.run.lambda_output import LambdaOutput

    with LambdaOutput(path) as out:
        yield out


def synth_with(overrides: dict[str, Any], out: Path) -> Path:
    """``GenesysEvents-dev`` synthesized into ``out`` (bundling skipped) with keys of its cdk.json environment
    replaced, e.g. ``{"genesysRateLimit": None}``: one design of a benchmark."""
    ensure_paths()
    from gcpipe.local.run.synth import synth_is_fresh, synthesize

    stamp = out / "bench-overrides.json"
    wanted = json.dumps(overrides, sort_keys=True)
    if synth_is_fresh(out, ENV, ROOT) and stamp.is_file() and stamp.read_text() == wanted:
        return out  # synthesized from the same sources with the same overrides
    synthesize(ENV, out, ROOT, environment_overrides=overrides)
    stamp.write_text(wanted)
    return out


@contextlib.contextmanager
def local_stack(
    *,
    retry_time_scale: float = 0.0,
    rate_limit: float | None = None,
    log_path: Path | None = None,
    token_ttl: int | None = None,
    cdk_out: Path | None = None,
    simulator: dict[str, Any] | None = None,
) -> Iterator[tuple[Any, Any, Any]]:
    """(pipeline, simulator, stack config): the synthesized stack on moto (in-process) and the simulator.

    ``cdk_out`` defaults to ``cdk_out_dir()``; ``simulator`` holds extra GenesysSimulator arguments (limits)."""
    ensure_paths()
    dummy_aws_env()
    from gcpipe.local.deploy import GenesysEndpoint
    from gcpipe.local.pipeline import LocalPipeline
    from gcpipe.local.run.stack_config import read_stack_config
    from gcpipe.simulator import GenesysSimulator

    cdk_out = cdk_out or cdk_out_dir()[0]
    log_path = log_path or (RESULTS_DIR / "lambdas.log.tmp")
    kwargs: dict[str, Any] = {"token_ttl_seconds": token_ttl} if token_ttl else {}
    kwargs.update(simulator or {})
    with GenesysSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rate_limit_per_second=rate_limit, **kwargs
    ) as sim:
        genesys = GenesysEndpoint(sim.base_url, CLIENT_ID, CLIENT_SECRET)
        with lambda_output(log_path) as out:
            with LocalPipeline(
                ENV, cdk_out=cdk_out, genesys=genesys, mode="in-process", retry_time_scale=retry_time_scale
            ) as pipeline:
                out.ensure()
                yield pipeline, sim, read_stack_config(pipeline)


def make_events(config: Any, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` distinct acd.end envelopes the stack's rule and dispatcher accept."""
    import random

    ensure_paths()
    from gcpipe import traffic as gen

    rng = random.Random(seed)
    queue = config.queue_ids[0] if config.queue_ids else gen.SAMPLE_QUEUE_ID
    return [gen.make_event("acd.end", queue_id=queue, source=config.bus_name, rng=rng) for _ in range(n)]


def gen_id() -> str:
    import uuid

    return str(uuid.uuid4())


class AwsCalls:
    """API calls the stack makes to moto's SQS and DynamoDB while it runs (what AWS would bill per request),
    by (service, operation, queue or table name). Receives that returned nothing are left out (the event
    source mapping's empty polls are a fixed cost, not a cost per event). Wraps the backend classes' methods
    for the ``with`` block and puts them back after."""

    SQS = (
        "send_message",
        "send_message_batch",
        "receive_message",
        "delete_message",
        "delete_message_batch",
        "change_message_visibility",
        "change_message_visibility_batch",
    )
    DYNAMODB = ("put_item", "get_item", "update_item", "delete_item", "query", "transact_write_items")

    def __init__(self) -> None:
        import collections
        import threading

        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.entries: collections.Counter[tuple[str, str, str]] = collections.Counter()  # messages / items
        self._lock = threading.Lock()
        self._depth = threading.local()
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> "AwsCalls":
        from moto.dynamodb.models import DynamoDBBackend
        from moto.sqs.models import SQSBackend

        for owner, service, names in ((SQSBackend, "sqs", self.SQS), (DynamoDBBackend, "dynamodb", self.DYNAMODB)):
            for name in names:
                original = owner.__dict__[name]
                self._saved.append((owner, name, original))
                setattr(owner, name, self._counted(service, name, original))
        return self

    def _counted(self, service: str, name: str, original: Any) -> Any:
        calls = self

        def counted(backend: Any, *args: Any, **kwargs: Any) -> Any:
            nested = getattr(calls._depth, "n", 0)
            calls._depth.n = nested + 1
            try:
                result = original(backend, *args, **kwargs)
            finally:
                calls._depth.n = nested
            if nested:  # moto's batch operations call the single ones: one API request, counted once
                return result
            target = (
                kwargs.get("queue_name")
                or kwargs.get("table_name")
                or (args[0] if args and isinstance(args[0], str) else "")
            )
            if name == "transact_write_items":
                target = "transaction"
            entries = 1
            if name == "receive_message":
                entries = len(result)
                if not entries:
                    return result
            elif name.endswith("_batch"):
                batch = kwargs.get("entries") or kwargs.get("receipts") or (args[1] if len(args) > 1 else [])
                entries = len(batch)
            with calls._lock:
                calls.counts[(service, name, str(target))] += 1
                calls.entries[(service, name, str(target))] += entries
            return result

        return counted

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def summary(self, names: dict[str, str]) -> dict[str, dict[str, int]]:
        """``{"<label>.<operation>": {"requests": n, "entries": m}}`` for the queues/tables in ``names``
        (name -> label); others are summed under their service."""
        out: dict[str, dict[str, int]] = {}
        for (service, op, target), n in sorted(self.counts.items()):
            label = names.get(target, f"{service}_other")
            row = out.setdefault(f"{label}.{op}", {"requests": 0, "entries": 0})
            row["requests"] += n
            row["entries"] += self.entries[(service, op, target)]
        return out
