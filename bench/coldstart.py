"""Cold start: import time of each handler module in a fresh interpreter, as a ratio to ``import boto3``.

Each sample is a new ``python -c`` process (this venv's interpreter, ``PYTHONPATH=lambdas``, the
handler's environment variables set to dummies), timing only the import with ``perf_counter``.
Handlers and the boto3 baseline are interleaved round-robin, so a noisy neighbour hits all alike.

Each handler also gets a second figure, ``first_invocation``: the import plus the modules it defers to
its first invocation (``DEFERRED``: Powertools batch, idempotency, parameters), timed in the same fresh
interpreter. The cold start a first event pays is the import (Lambda's INIT) plus that difference.

Also: the size of the Lambda code asset (one asset for the three functions), zipped and unzipped, and
whether it holds aws_xray_sdk: the bundled asset of cdk.out when a real synth left one, else a bundle
built here by the real bundler (``infra.bundling.PipLocalBundling``, from the hashed lock).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from . import _common as c

NAME = "coldstart"
HANDLERS = ("dispatcher.handler", "processor.handler", "error_logger.handler")
BASELINE = "boto3"
DUMMY_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "genesys-event-pipeline",
    "POWERTOOLS_METRICS_NAMESPACE": "GenesysEventPipeline",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-dlq",
    "ALLOWED_TOPICS": "v2.detail.events.conversation.{id}.acd.end",
    "GENESYS_DOMAIN": "mypurecloud.com",
    "GENESYS_SECRET_NAME": "bench/genesys",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
}
# What each handler's first invocation imports that its module import does not (lazy imports in the domain package).
DEFERRED = {
    "dispatcher.handler": ("aws_lambda_powertools.utilities.batch",),
    "processor.handler": ("aws_lambda_powertools.utilities.idempotency", "aws_lambda_powertools.utilities.parameters"),
    "error_logger.handler": ("aws_lambda_powertools.utilities.parameters",),
}
# Wall time (perf_counter) and the process's CPU time (process_time): on a shared machine the wall figure
# includes waiting for a core, the CPU figure does not.
SNIPPET = (
    "import time; t=time.perf_counter(); c=time.process_time(); import {module}; "
    "print(time.perf_counter()-t, time.process_time()-c)"
)
FIRST_SNIPPET = "import time; t=time.perf_counter(); import {module}; {deferred}; print(time.perf_counter()-t)"


def _python(code: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    env.update(DUMMY_ENV)
    env["PYTHONPATH"] = str(c.LAMBDAS_DIR)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the .pyc files already written are used; none new (same for all)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(c.ROOT), capture_output=True, text=True, timeout=120, check=True
    )
    return [float(x) for x in out.stdout.strip().splitlines()[-1].split()]


def import_seconds(module: str) -> tuple[float, float]:
    """(wall, CPU) seconds of ``import module`` in a fresh interpreter."""
    wall, cpu = _python(SNIPPET.format(module=module))
    return wall, cpu


def first_invocation_seconds(module: str) -> float:
    """Wall seconds of the import plus the first invocation's deferred imports, in one fresh interpreter."""
    deferred = "; ".join(f"import {m}" for m in DEFERRED.get(module, ())) or "pass"
    return _python(FIRST_SNIPPET.format(module=module, deferred=deferred))[0]


def compile_handlers() -> None:
    """Byte-compile lambdas/ first, as pip did site-packages (boto3, Powertools): imports, not compiles, are timed."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(c.LAMBDAS_DIR)], check=True, timeout=300)


def _dir_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sum(p.stat().st_size for p in files), len(files)


def _zipped_size(path: Path) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(path.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                zf.write(p, p.relative_to(path).as_posix())
    return buf.tell()


def bundled_asset() -> tuple[Path | None, str]:
    """The bundled code asset in cdk.out (a real synth with bundling), if there is one."""
    cdk_out = c.ROOT / "cdk.out"
    if not (cdk_out / f"{c.STACK}.template.json").exists():
        return None, "no cdk.out"
    template = c.load_template(cdk_out)
    for r in template["Resources"].values():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        key = str((r["Properties"].get("Code") or {}).get("S3Key", ""))
        asset = cdk_out / f"asset.{key.split('.')[0]}"
        if asset.is_dir() and (asset / "aws_lambda_powertools").is_dir():
            return asset, f"cdk.out/{asset.name} (bundled synth)"
    return None, "cdk.out has no bundled asset (synth skipped bundling)"


def asset_size() -> dict[str, Any]:
    asset, source = bundled_asset()
    tmp = None
    try:
        if asset is None:
            c.ensure_paths()
            from infra.bundling import LAMBDAS_DIR, PipLocalBundling

            tmp = Path(tempfile.mkdtemp(prefix="bench-asset-"))
            PipLocalBundling(LAMBDAS_DIR, "arm64").try_bundle(str(tmp))
            asset, source = tmp, f"{source}: built here by infra.bundling (arm64, from lambdas/requirements.lock)"
        unzipped, files = _dir_size(asset)
        return {
            "source": source,
            "unzipped_bytes": unzipped,
            "zipped_bytes": _zipped_size(asset),
            "files": files,
            "lambda_limit_unzipped_bytes": 250 * 1024 * 1024,
            "has_aws_xray_sdk": (asset / "aws_xray_sdk").exists(),
            "top_level": sorted(p.name for p in asset.iterdir() if p.name != "__pycache__"),
        }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run(smoke: bool = False, runs: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    runs = runs or (2 if smoke else 15)
    compile_handlers()
    samples: dict[str, list[float]] = {m: [] for m in (BASELINE, *HANDLERS)}
    cpu: dict[str, list[float]] = {m: [] for m in samples}
    first: dict[str, list[float]] = {m: [] for m in HANDLERS}
    for m in samples:  # one unmeasured run each: the OS file cache warm for all alike
        import_seconds(m)
    for _ in range(runs):
        for m in samples:
            wall, cpu_s = import_seconds(m)
            samples[m].append(wall)
            cpu[m].append(cpu_s)
        for m in HANDLERS:
            first[m].append(first_invocation_seconds(m))
    base, cpu_base = c.median(samples[BASELINE]), c.median(cpu[BASELINE])
    imports = {
        m: {
            "median_ms": round(c.median(v) * 1000, 1),
            "min_ms": round(min(v) * 1000, 1),
            "max_ms": round(max(v) * 1000, 1),
            "ratio_to_boto3": round(c.median(v) / base, 2),
            "cpu_median_ms": round(c.median(cpu[m]) * 1000, 1),
            "cpu_ratio_to_boto3": round(c.median(cpu[m]) / cpu_base, 2),
        }
        for m, v in samples.items()
    }
    first_invocation = {
        m: {
            "deferred": list(DEFERRED.get(m, ())),
            "median_ms": round(c.median(v) * 1000, 1),
            "ratio_to_boto3": round(c.median(v) / base, 2),
        }
        for m, v in first.items()
    }
    results = {"imports": imports, "first_invocation": first_invocation, "asset": asset_size()}
    notes = [
        "Import time only (the INIT phase's module import), in a fresh interpreter per sample, medians of interleaved runs. "
        "Settings, boto3 clients and the Genesys client are built lazily on the first invocation (functools.cache), "
        "so they are not in these figures.",
        "Ratios to a bare 'import boto3' measured in the same run; Lambda's own runtime start (~100-200 ms) is not included.",
        "cpu_*: the same imports in process CPU time, which a busy shared machine does not inflate.",
        "lambdas/ is byte-compiled before timing (site-packages already is). The Lambda asset ships no .pyc and "
        "/var/task is read-only, so on Lambda the asset's modules are compiled at every cold start.",
        "first_invocation: the import plus the Powertools utilities the handler's first invocation imports (DEFERRED), "
        "timed in one interpreter: what the first event pays in imports, INIT and first invoke together.",
        "This machine's CPU is faster than a 256 MB Lambda's share (~0.15 vCPU): absolute ms will be larger on AWS, ratios hold better.",
    ]
    params = {
        "runs": runs,
        "pythonpath": "lambdas",
        "bytecode": "lambdas/ compiled first (compileall), as site-packages is",
    }
    return c.envelope(NAME, params, results, smoke=smoke, started=started, notes=notes)


def render(result: dict[str, Any]) -> None:
    r = result["results"]
    c.table(
        "Import time in a fresh interpreter (ms)",
        ["module", "median", "min", "max", "x import boto3", "CPU median", "CPU x boto3"],
        [
            [
                m,
                v["median_ms"],
                v["min_ms"],
                v["max_ms"],
                v["ratio_to_boto3"],
                v["cpu_median_ms"],
                v["cpu_ratio_to_boto3"],
            ]
            for m, v in r["imports"].items()
        ],
    )
    c.table(
        "Import + the first invocation's deferred imports (ms)",
        ["module", "median", "x import boto3", "deferred"],
        [[m, v["median_ms"], v["ratio_to_boto3"], ", ".join(v["deferred"])] for m, v in r["first_invocation"].items()],
    )
    a = r["asset"]
    c.table(
        f"Lambda code asset ({a['source']})",
        ["files", "unzipped MiB", "zipped MiB", "limit (unzipped) MiB", "aws_xray_sdk"],
        [
            [
                a["files"],
                a["unzipped_bytes"] / 2**20,
                a["zipped_bytes"] / 2**20,
                a["lambda_limit_unzipped_bytes"] / 2**20,
                a["has_aws_xray_sdk"],
            ]
        ],
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return c.cli(NAME, run, render, argv, lambda p: p.add_argument("--runs", type=int))


if __name__ == "__main__":
    main()
