"""``gcpipe local run``: the whole pipeline on this machine, driven by realistic traffic, every event accounted for.

1. Synthesizes the environment (``cdk synth``, asset bundling skipped: the
   local Lambdas' worker processes run the ``lambdas/`` source with this venv's packages)
   into ``.local-run/cdk.out`` when it is missing or older than the CDK app,
   the state machine or the Lambda code.
2. Starts the Genesys simulator and the stack on moto (``LocalPipeline``,
   deployed from that template: the shipped rule, queues, redrive policy,
   state machine, functions and their environments), with background SQS
   pollers standing in for Lambda's event source mapping.
3. Sends traffic through the partner bus (PutPartnerEvents), as Genesys does:
   the generated mix (topics and queues inside and outside the rule, the same
   event three times, late events, malformed ones, a 429 storm and a 5xx
   burst switched on and off in the simulator) or the user's ``--events`` file.
   An event whose source is not this bus's partner source (another org) cannot
   be put on a partner bus; it goes straight to the main queue, as ``gcpipe
   send`` sends events, after the rule's own pattern is applied to it.
4. Follows every event to its outcome (``ledger.py``) with a progress bar, then
   prints the summary; exit status 0 only when every event has exactly one
   outcome.

The Lambdas' own output (JSON log lines, EMF metric blobs) goes to
``.local-run/lambdas.log``, not the terminal.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import PROJECT_ROOT
from .. import traffic as gen
from . import write_kinds
from .progress_watch import ProgressWatch
from .run_files import open_keeping_previous, previous_of
from .service_metrics import AWS_METRICS_LOG, ServiceMetricsLog
from .shutdown import count_in_flight
from .ledger import (
    OUTCOMES,
    Accounting,
    DeadLetter,
    Ledger,
    OutcomeCapture,
    TrackedEvent,
    dead_letter_from_message,
    peek_queue,
)

LOG = logging.getLogger(__name__)

STACK_PREFIX = "GenesysEvents-"
SERVICE_LOGGER = "genesys-event-pipeline"  # genesys_pipeline.observability.SERVICE: the handlers' Powertools logger
RUN_DIR = PROJECT_ROOT / ".local-run"
# What the synthesized stack is made of: a newer file here makes the template stale.
SYNTH_SOURCES = ("app.py", "cdk.json", "infra", "statemachines", "lambdas")
DEFAULT_RETRY_TIME_SCALE = 0.02  # ASL Retry waits at 2% of real time: a 20 s backoff takes 0.4 s
FAST_FORWARD_AFTER_SECONDS = 2.0
DLQ_SCAN_SECONDS = 5.0  # how often a run peeks at the DLQ while the pipeline is busy  # records left in flight this long are made visible (local time compression)


class RunnerError(Exception):
    """A problem that stops the run before traffic (bad file, failed synth): one line for the user."""


# ---------------------------------------------------------------------------- synth


def template_path(cdk_out: Path, env: str) -> Path:
    return Path(cdk_out) / f"{STACK_PREFIX}{env}.template.json"


def _newest_source_mtime(root: Path = PROJECT_ROOT) -> float:
    newest = 0.0
    for name in SYNTH_SOURCES:
        path = root / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for f in path.rglob("*"):
                if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc"):
                    newest = max(newest, f.stat().st_mtime)
    return newest


def synth_is_fresh(cdk_out: Path, env: str, root: Path = PROJECT_ROOT) -> bool:
    template = template_path(cdk_out, env)
    return template.is_file() and template.stat().st_mtime >= _newest_source_mtime(root)


def synthesize(env: str, out: Path, root: Path = PROJECT_ROOT, *, environment_overrides: dict[str, Any] | None = None) -> None:
    """Synthesize ``GenesysEvents-<env>`` into ``out`` with asset bundling skipped.

    The CDK app is run the way the CDK CLI runs it (cdk.json's ``context`` and the
    output directory passed through ``CDK_CONTEXT_JSON`` / ``CDK_OUTDIR``), because the
    CLI refuses user context keys starting with ``aws:`` and
    ``{"aws:cdk:bundling-stacks": []}`` is how a CDK app is told not to bundle. The
    function asset is then ``lambdas/`` as is: the local Lambdas' worker processes import it with
    this venv's packages (a bundled asset holds wheels for Lambda's Python and
    architecture, arm64 here, which this machine may not load).
    """
    try:
        context = json.loads((root / "cdk.json").read_text()).get("context", {})
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read cdk.json: {exc}") from None
    if environment_overrides:  # keys of context.environments.<env> replaced for this synth (the benchmarks' designs)
        context.setdefault("environments", {}).setdefault(env, {}).update(environment_overrides)
    context.update({"env": env, "aws:cdk:bundling-stacks": []})
    python = root / ".venv" / "bin" / "python"
    env_vars = dict(os.environ, CDK_OUTDIR=str(out), CDK_CONTEXT_JSON=json.dumps(context), CDK_VALIDATION="false",
                    JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true")
    Path(out).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([str(python if python.exists() else sys.executable), "app.py"], cwd=root, env=env_vars,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not template_path(out, env).is_file():
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-15:]
        raise RunnerError(f"synth of {STACK_PREFIX}{env} failed:\n" + "\n".join(tail))


def ensure_synthesized(env: str, cdk_out: Path | None = None, *, say: Callable[[str], None] = lambda _: None,
                       root: Path = PROJECT_ROOT) -> Path:
    """The cloud assembly to deploy: ``cdk_out`` as given, or ``.local-run/cdk.out`` synthesized when stale."""
    if cdk_out is not None:
        if not template_path(cdk_out, env).is_file():
            raise RunnerError(f"{template_path(cdk_out, env)} not found: synthesize {STACK_PREFIX}{env} into {cdk_out} first")
        return Path(cdk_out)
    out = root / ".local-run" / "cdk.out"
    if synth_is_fresh(out, env, root):
        say(f"using {out} (up to date)")
        return out
    if not (root / "cdk.json").exists() or not (root / "app.py").exists():
        raise RunnerError("the CDK app (cdk.json, app.py) is not there yet: nothing to deploy")
    say(f"synthesizing {STACK_PREFIX}{env} into {out} (bundling skipped: the local Lambdas run lambdas/ in place)")
    synthesize(env, out, root)
    return out


# ---------------------------------------------------------------------------- input


@dataclass
class InputProblem:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _entry_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be put on an event bus (PutPartnerEvents needs Source, DetailType and a JSON-object Detail)."""
    if not isinstance(obj, dict):
        return "not a JSON object (expected an EventBridge event: source, detail-type, detail)"
    entry_form = "Detail" in obj or "DetailType" in obj
    source = obj.get("Source" if entry_form else "source")
    detail_type = obj.get("DetailType" if entry_form else "detail-type")
    detail = obj.get("Detail" if entry_form else "detail")
    missing = [n for n, v in (("source", source), ("detail-type", detail_type), ("detail", detail)) if v in (None, "")]
    if missing:
        return f"not an EventBridge event: missing {', '.join(missing)}"
    if not isinstance(source, str) or not isinstance(detail_type, str):
        return "source and detail-type must be strings"
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return "Detail is not JSON"
    if not isinstance(detail, dict):
        return "detail must be a JSON object (EventBridge refuses anything else)"
    t = obj.get("Time" if entry_form else "time")
    if t not in (None, "") and (not isinstance(t, str) or _parse_time(t) is None):
        return f"time {t!r} is not an ISO 8601 timestamp"
    return None


def _as_envelope(obj: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry (Source/DetailType/Detail) or an envelope -> an envelope."""
    if "Detail" in obj or "DetailType" in obj:
        detail = obj["Detail"]
        return {"version": "0", "id": obj.get("Id") or gen.new_id(), "detail-type": obj["DetailType"], "source": obj["Source"],
                "account": gen.SAMPLE_ACCOUNT, "time": obj.get("Time") or gen._iso(datetime.now(timezone.utc), millis=False),
                "region": gen.SAMPLE_REGION, "resources": obj.get("Resources", []),
                "detail": json.loads(detail) if isinstance(detail, str) else detail}
    return copy.deepcopy(obj)


def read_events_file(path: Path) -> tuple[list[TrackedEvent], list[InputProblem]]:
    """``--events FILE.jsonl``: one EventBridge event per line. Bad lines are reported by number; the others run."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RunnerError(f"cannot read {path}: {exc.strerror or exc}") from None
    events: list[TrackedEvent] = []
    problems: list[InputProblem] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            problems.append(InputProblem(n, f"not UTF-8 text (byte {exc.start})"))
            continue
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            problems.append(InputProblem(n, f"not valid JSON ({getattr(exc, 'msg', exc)}); EventBridge only carries JSON events"))
            continue
        problem = _entry_problem(obj)
        if problem:
            problems.append(InputProblem(n, problem))
            continue
        events.append(TrackedEvent(index=0, kind="file", envelope=_as_envelope(obj), line=n))
    if not events and not problems:
        raise RunnerError(f"{path} has no events (one EventBridge event, as JSON, per line)")
    return events, problems


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------- the generated mix


@dataclass(frozen=True)
class StackConfig:
    """What the deployed stack says about itself (read from moto, never restated here)."""

    bus_name: str
    org_id: str | None
    topics: tuple[str, ...]  # allowed topic templates
    queue_ids: tuple[str, ...]
    max_age_seconds: int
    unavailable_attempts: int  # how many processor attempts the ASL makes on GenesysUnavailable
    attribute_map: dict[str, str]


def read_stack_config(pipeline: Any) -> StackConfig:
    from genesys_pipeline.settings import DEFAULT_ATTRIBUTE_MAP, DEFAULT_MAX_EVENT_AGE_SECONDS  # noqa: PLC0415

    functions = pipeline.functions
    dispatcher = functions["DispatcherFunctionName"]["Environment"]["Variables"]
    processor = functions["ProcessorFunctionName"]["Environment"]["Variables"]
    bus = pipeline.outputs["EventBusName"]
    org = dispatcher.get("GENESYS_ORG_ID") or None
    if org is None and bus.startswith("aws.partner/genesys.com/cloud/"):
        org = bus.split("/")[3]
    definition = json.loads(pipeline.client("stepfunctions").describe_state_machine(
        stateMachineArn=pipeline.outputs["StateMachineArn"])["definition"])
    return StackConfig(
        bus_name=bus,
        org_id=org,
        topics=tuple(t for t in dispatcher.get("ALLOWED_TOPICS", "").split(",") if t),
        queue_ids=tuple(q for q in dispatcher.get("ALLOWED_QUEUE_IDS", "").split(",") if q),
        max_age_seconds=int(dispatcher.get("MAX_EVENT_AGE_SECONDS") or DEFAULT_MAX_EVENT_AGE_SECONDS),
        unavailable_attempts=retry_attempts(definition, "GenesysUnavailable"),
        attribute_map=json.loads(processor["ATTRIBUTE_MAP"]) if processor.get("ATTRIBUTE_MAP") else dict(DEFAULT_ATTRIBUTE_MAP),
    )


def retry_attempts(definition: dict[str, Any], error: str) -> int:
    """Attempts a Task state makes on ``error``: 1 + MaxAttempts of the first retrier that names it (or States.ALL)."""
    best = 1
    for state in _states(definition):
        if state.get("Type") != "Task":
            continue
        for retrier in state.get("Retry", []):
            names = retrier.get("ErrorEquals", [])
            if error in names or "States.ALL" in names:
                best = max(best, 1 + int(retrier.get("MaxAttempts", 3)))
                break
    return best


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in (definition.get("States") or {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if isinstance(state.get("Iterator"), dict):
            yield from _states(state["Iterator"])
        if isinstance(state.get("ItemProcessor"), dict):
            yield from _states(state["ItemProcessor"])


@dataclass
class Phase:
    name: str
    title: str
    events: list[TrackedEvent]
    before: Callable[[Any], None] = lambda sim: None  # switch a fault on
    during: Callable[[Any], None] = lambda sim: None  # after sending: keep the fault on, then off
    after: Callable[[Any], None] = lambda sim: None


def _tracked(kind: str, envelope: dict[str, Any], phase: str, route: str = "bus") -> TrackedEvent:
    return TrackedEvent(index=0, kind=kind, envelope=envelope, phase=phase, route=route)


def build_mix(config: StackConfig, count: int, rng: random.Random, *, faults: bool = True) -> list[Phase]:
    """The demo's traffic, in phases: the bulk mix, then a 429 storm, then a 5xx burst."""
    shorts = [gen.short_topic(t) for t in config.topics] or list(gen.DEFAULT_TOPICS)
    queues = list(config.queue_ids) or [gen.SAMPLE_QUEUE_ID]
    source = config.bus_name
    now = datetime.now(timezone.utc)

    def fresh(topic: str | None = None, **kw: Any) -> dict[str, Any]:
        topic = topic or shorts[rng.randrange(len(shorts))]
        at = now - timedelta(seconds=rng.uniform(1, 300))
        return gen.make_event(topic, at=at, delivered_at=now, queue_id=kw.pop("queue_id", rng.choice(queues)),
                              source=source, rng=rng, **kw)

    main: list[TrackedEvent] = []
    valid = [fresh(shorts[i % len(shorts)]) for i in range(max(1, count))]
    main += [_tracked("event", e, "main") for e in valid]
    # The same event three times (Genesys delivers at least once): two redeliveries of a few.
    for e in valid[: max(1, count // 8)]:
        main += [_tracked("duplicate", gen.duplicate(e, rng=rng), "main") for _ in range(2)]
    # Other topics, and acd.end for a queue outside the filter: the rule keeps them out.
    for topic in ("attributes", "acd.start", "user.end"):
        if gen.topic_template(topic) not in config.topics:
            main.append(_tracked("other-topic", fresh(topic), "main"))
    if config.queue_ids:
        for _ in range(2):
            main.append(_tracked("other-queue", fresh("acd.end", queue_id=gen.new_id(rng)), "main"))
    # Late: 3 days late is still applied (Genesys retries for 4 days); older than the max age is stale.
    within = timedelta(days=3) if config.max_age_seconds > 3 * 86400 else timedelta(seconds=config.max_age_seconds // 2)
    for _ in range(2):
        main.append(_tracked("late", gen.late(fresh(), by=within), "main"))
        main.append(_tracked("stale", gen.late(fresh(), by=timedelta(seconds=config.max_age_seconds + 86400)), "main"))
    # Malformed (bad JSON cannot cross EventBridge): missing fields, wrong types, unsupported version, wrong org.
    acd = "acd.end" if "acd.end" in shorts else shorts[0]
    main.append(_tracked("missing-field", gen.missing_field(fresh(acd)), "main"))
    main.append(_tracked("missing-field", gen.missing_field(fresh(acd), ("detail", "metadata", "CorrelationId")), "main"))
    wrong_type = fresh(acd)
    wrong_type["detail"]["eventBody"]["eventTime"] = str(wrong_type["detail"]["eventBody"]["eventTime"])
    main.append(_tracked("wrong-type", wrong_type, "main"))
    main.append(_tracked("unsupported-version", gen.unsupported_version(fresh(acd)), "main"))
    main.append(_tracked("wrong-org", gen.wrong_org(fresh(acd), rng=rng), "main", route="queue"))
    rng.shuffle(main)
    phases = [Phase("main", "the mix", main)]
    if not faults:
        return phases

    storm = [_tracked("event", fresh(), "storm") for _ in range(max(4, count // 3))]

    def storm_on(sim: Any) -> None:
        # Retry-After above the processor's inline limit: the state machine's backoff takes over.
        sim.set_rate_limit(2, retry_after=5)

    def storm_hold(sim: Any) -> None:
        time.sleep(1.5)
        sim.set_rate_limit(None)

    phases.append(Phase("storm", "a Genesys 429 storm (rate limit 2/s, Retry-After 5 s, for 1.5 s)", storm, storm_on, storm_hold))

    burst = [_tracked("event", fresh(), "burst") for _ in range(max(3, count // 4))]
    within_budget = max(0, min(3, config.unavailable_attempts - 1))
    phases.append(Phase("burst", f"a 5xx burst within the retry budget ({within_budget} x 503)", burst,
                        lambda sim: sim.fail_next(within_budget, status=503)))
    beyond = [_tracked("event", fresh(), "outage")]
    phases.append(Phase("outage", f"a 5xx burst beyond the retry budget ({config.unavailable_attempts} x 503 for one event)",
                        beyond, lambda sim: sim.fail_next(config.unavailable_attempts, status=503)))
    return phases


# ---------------------------------------------------------------------------- sending


def delivered_envelope(entry_envelope: dict[str, Any], event_id: str, account: str, region: str) -> dict[str, Any]:
    """The envelope as EventBridge delivers it (new id, the bus's account and region)."""
    out = {k: copy.deepcopy(v) for k, v in entry_envelope.items()}
    out.update({"id": event_id, "account": account, "region": region})
    out.setdefault("version", "0")
    out.setdefault("resources", [])
    return out


class Sender:
    """Puts tracked events on the partner bus (or the main queue), evaluating the rule as EventBridge does."""

    def __init__(self, pipeline: Any, ledger: Ledger):
        from gcpipe.ops.rule import RuleMatcher  # noqa: PLC0415
        from gcpipe.ops.validation import load_parser  # noqa: PLC0415
        from moto.events.models import EventPattern  # noqa: PLC0415 - the matcher `gcpipe send` uses locally

        self.pipeline = pipeline
        self.ledger = ledger
        outputs = pipeline.outputs
        self.bus = outputs["EventBusName"]
        self.rule_name = outputs["EventRuleName"]
        rule = pipeline.client("events").describe_rule(Name=self.rule_name, EventBusName=self.bus)
        pattern = json.loads(rule.get("EventPattern") or "{}")
        self.matcher = RuleMatcher(pattern, EventPattern.load(json.dumps(pattern)).matches_event)
        self.parse, _ = load_parser()

    def _dedup_key(self, envelope: dict[str, Any]) -> tuple[str | None, str | None]:
        from genesys_pipeline.errors import InvalidEvent  # noqa: PLC0415

        try:
            return self.parse(envelope).dedup_key, None
        except InvalidEvent as exc:
            return None, getattr(exc, "reason", None) or str(exc)
        except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the run; the pipeline decides
            return None, f"{type(exc).__name__}: {exc}"

    def send(self, events: list[TrackedEvent]) -> None:
        account, region = self.pipeline.account_id, self.pipeline.region
        for e in events:
            if e.route == "bus" and e.envelope.get("source") != self.bus:
                e.route = "queue"  # a partner bus only takes its own source's events
        bus_events = [e for e in events if e.route == "bus"]
        for start in range(0, len(bus_events), 10):
            chunk = bus_events[start:start + 10]
            entries = []
            for e in chunk:
                entry = {"Source": e.envelope["source"], "DetailType": e.envelope["detail-type"],
                         "Detail": json.dumps(e.envelope["detail"]), "Resources": e.envelope.get("resources") or []}
                if e.envelope.get("time"):
                    entry["Time"] = _parse_time(e.envelope["time"]) or datetime.now(timezone.utc)
                entries.append(entry)
            try:
                results = self.pipeline.client("events").put_partner_events(Entries=entries)["Entries"]
            except Exception as exc:  # noqa: BLE001 - reported per event
                results = [{"ErrorCode": type(exc).__name__, "ErrorMessage": str(exc)}] * len(chunk)
            for e, result in zip(chunk, results):
                self.ledger.add(e)
                if "EventId" not in result:
                    e.send_error = f"PutPartnerEvents: {result.get('ErrorCode')}: {result.get('ErrorMessage', '')}"
                    continue
                e.event_id = result["EventId"]
                delivered = delivered_envelope(e.envelope, e.event_id, account, region)
                self._track(e, delivered)
        sqs = self.pipeline.client("sqs")
        for e in events:
            if e.route != "queue":
                continue
            self.ledger.add(e)
            envelope = delivered_envelope(e.envelope, e.envelope.get("id") or gen.new_id(), e.envelope.get("account") or account,
                                          e.envelope.get("region") or region)
            e.event_id = envelope["id"]
            try:
                sqs.send_message(QueueUrl=self.pipeline.outputs["MainQueueUrl"], MessageBody=json.dumps(envelope))
            except Exception as exc:  # noqa: BLE001
                e.send_error = f"SendMessage: {exc}"
                continue
            self._track(e, envelope)

    def _track(self, e: TrackedEvent, delivered: dict[str, Any]) -> None:
        e.dedup_key, e.invalid_reason = self._dedup_key(delivered)
        e.sent = True
        # The queue route bypasses the rule (a message the rule did not deliver: the dispatcher's own
        # checks are the defense in depth); on the bus, EventBridge applies the rule's pattern.
        if e.route == "bus" and not self.matcher.matches(delivered):
            e.rule_filtered = f"not matched by rule {self.rule_name}"


# ---------------------------------------------------------------------------- the Lambdas' output


class LambdaOutput:
    """Sends what the local Lambdas print (their workers' Powertools JSON logs, EMF metrics) to a log file.

    ``sys.stdout`` is swapped for the file for the duration (EMF blobs are
    ``print``ed); the Powertools logger's stream handler, created once per
    process with whatever stdout was then, is pointed at the file too and put
    back afterwards. The previous run's file is kept, as ``<name>.previous.log``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: Any = None
        self._stdout: Any = None
        self._previous_stream: Any = None

    def __enter__(self) -> "LambdaOutput":
        self._file = open_keeping_previous(self.path)
        self._stdout = sys.stdout
        sys.stdout = self._file
        self._retarget(self._file)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        file = self._file

        def showwarning(message: Any, category: Any, filename: str, lineno: int, *_: Any, **__: Any) -> None:
            file.write(warnings.formatwarning(message, category, filename, lineno).rstrip() + "\n")

        warnings.showwarning = showwarning  # the Lambdas' warnings (Powertools' "no metrics") go to the log too
        return self

    @property
    def previous_path(self) -> Path:
        return previous_of(self.path)

    def _retarget(self, stream: Any) -> None:
        handler = getattr(logging.getLogger(SERVICE_LOGGER), "powertools_handler", None)
        if isinstance(handler, logging.StreamHandler):
            previous = handler.setStream(stream)
            if self._previous_stream is None:
                self._previous_stream = previous

    def ensure(self) -> None:
        """Re-point the Powertools handler (it may have been created after __enter__)."""
        if self._file is not None:
            self._retarget(self._file)

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        sys.stdout = self._stdout
        handler = getattr(logging.getLogger(SERVICE_LOGGER), "powertools_handler", None)
        if isinstance(handler, logging.StreamHandler):
            restore = self._previous_stream if self._previous_stream not in (None, self._file) else sys.__stdout__
            handler.setStream(restore)
        self._file.close()


# ---------------------------------------------------------------------------- the run


@dataclass
class RunOptions:
    env: str = "dev"
    events_file: Path | None = None
    count: int = 24
    seed: int | None = None
    mode: str = "server"  # "server" (moto's server on loopback) or "in-process"
    keep_running: bool = False
    faults: bool = True
    retry_time_scale: float = DEFAULT_RETRY_TIME_SCALE
    timeout: float = 90.0
    cdk_out: Path | None = None
    run_dir: Path = RUN_DIR


@dataclass
class FailedExecution:
    arn: str
    name: str
    error: str | None
    cause: str | None
    failed_state: str | None
    replay: str

    def as_json(self) -> dict[str, Any]:
        return {"execution_arn": self.arn, "name": self.name, "error": self.error, "cause": self.cause,
                "failed_state": self.failed_state, "replay": self.replay}


@dataclass
class RunSummary:
    env: str
    mode: str
    events: list[TrackedEvent]
    accounting: Accounting
    input_problems: list[InputProblem]
    writes: list[dict[str, Any]]
    token_fetches: int
    genesys_requests: dict[str, int]
    failed_executions: list[FailedExecution]
    phases: list[dict[str, Any]]
    wall_seconds: float
    log_file: Path
    notes: list[str] = field(default_factory=list)
    timed_out: bool = False
    attribute_keys: tuple[str, ...] = ()  # what the processor writes (its ATTRIBUTE_MAP): tells write-backs apart
    iam: dict[str, Any] = field(default_factory=dict)  # {"denied": [...], "unused": [...]}: lambda_runtime's IAM check

    @property
    def ok(self) -> bool:
        return self.accounting.holds and not self.input_problems and not self.send_errors and not self.timed_out

    @property
    def send_errors(self) -> list[TrackedEvent]:
        return [e for e in self.events if e.send_error]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "env": self.env,
            "mode": self.mode,
            "invariant": self.accounting.as_json(),
            "events": [e.as_json() for e in self.events],
            "input_errors": [{"line": p.line, "error": p.message} for p in self.input_problems],
            "genesys": {"writes": self.writes, "write_count": len(self.writes), "token_fetches": self.token_fetches,
                        "requests": self.genesys_requests},
            "failed_executions": [f.as_json() for f in self.failed_executions],
            "phases": self.phases,
            "wall_seconds": round(self.wall_seconds, 2),
            "lambda_log": str(self.log_file),
            "iam": self.iam,
            "notes": self.notes,
        }


class LocalRun:
    """One ``gcpipe local run``. ``run()`` returns the summary; the stack is stopped unless keep_running."""

    def __init__(self, options: RunOptions, *, progress_console: Any = None, say: Callable[[str], None] | None = None):
        self.options = options
        self.console = progress_console
        self.say = say or (lambda msg: None)
        self.ledger = Ledger()
        self.capture = OutcomeCapture()
        self.dead_letters: dict[str, DeadLetter] = {}
        self.notes: list[str] = []
        self.phase_log: list[dict[str, Any]] = []
        self.pipeline: Any = None
        self.sim: Any = None
        self.attribute_keys: tuple[str, ...] = ()
        self.integration: Any = None  # gcpipe.local.integration.LocalIntegration, once deployed
        self._stop = threading.Event()

    # -- building blocks ------------------------------------------------------------------
    def _scan_dead_letters(self) -> None:
        for m in peek_queue(self.pipeline.client("sqs"), self.pipeline.outputs["DeadLetterQueueUrl"]):
            self.dead_letters.setdefault(m["MessageId"], dead_letter_from_message(m))

    def _resolve(self) -> Accounting:
        return self.ledger.resolve(self.capture.lines, self.dead_letters.values())

    def _idle_now(self) -> bool:
        p = self.pipeline
        try:
            for poller in p.pollers:
                if poller.busy or p._queue_counts(poller.config.queue_url) != (0, 0):
                    return False
            return p._executions_settled() and p._async_settled()
        except Exception:  # noqa: BLE001 - the emulator is going away
            return False

    def _in_flight_only(self) -> bool:
        p = self.pipeline
        for poller in p.pollers:
            visible, in_flight = p._queue_counts(poller.config.queue_url)
            if visible or poller.busy:
                return False
            if in_flight:
                return p._executions_settled() and p._async_settled()
        return False

    def wait_for_outcomes(self, progress: Any, task: Any, watch: ProgressWatch) -> Accounting:
        """Until every sent event has its outcome and the pipeline is idle (or no new outcome for a while)."""
        stalled_since: float | None = None
        last_scan = 0.0
        while True:
            self.say_lambda_output()
            now = time.monotonic()
            idle = self._idle_now()
            # Each peek at the DLQ is a receive (SQS has no other way to look), which `dlq show`
            # reports: look seldom while the pipeline works, and when it goes idle.
            if now - last_scan > DLQ_SCAN_SECONDS or (idle and now - last_scan > 1.0):
                self._scan_dead_letters()
                last_scan = now
            acc = self._resolve()
            watch.observe(acc.sent - len(acc.unaccounted))
            if progress is not None:
                progress.update(task, total=acc.sent, completed=acc.sent - len(acc.unaccounted),
                                description=_progress_text(acc))
            if idle and not acc.unaccounted:
                self._scan_dead_letters()
                acc = self._resolve()
                if not acc.unaccounted:
                    return acc
            if watch.stalled:
                return acc
            if self._in_flight_only():
                stalled_since = stalled_since or now
                if now - stalled_since > FAST_FORWARD_AFTER_SECONDS:
                    moved = self.pipeline.expire_in_flight()
                    if moved:
                        self.notes.append(f"fast-forwarded the visibility timeout of {moved} record(s) left in flight "
                                          "after a failed dispatch (local time compression)")
                    stalled_since = None
            else:
                stalled_since = None
            time.sleep(0.1)

    def say_lambda_output(self) -> None:
        if self._output is not None:
            self._output.ensure()

    _output: LambdaOutput | None = None

    # -- the run ---------------------------------------------------------------------------
    def run(self, on_ready: Callable[["LocalRun", RunSummary], None] | None = None) -> RunSummary:
        from gcpipe.simulator import GenesysSimulator  # noqa: PLC0415

        from .deploy import GenesysEndpoint  # noqa: PLC0415
        from .integration import seed_integration  # noqa: PLC0415
        from .pipeline import LocalPipeline  # noqa: PLC0415

        opts = self.options
        started = time.monotonic()
        file_events: list[TrackedEvent] = []
        problems: list[InputProblem] = []
        if opts.events_file is not None:
            file_events, problems = read_events_file(opts.events_file)
            for p in problems:
                self.say(f"[yellow]skipped {p}[/]")
        cdk_out = ensure_synthesized(opts.env, opts.cdk_out, say=self.say)
        rng = random.Random(opts.seed)
        log_file = opts.run_dir / "lambdas.log"
        client_id, client_secret = f"local-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        sim = GenesysSimulator(client_id=client_id, client_secret=client_secret)
        self._output = LambdaOutput(log_file)
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._output)
            stack.enter_context(sim)
            self.sim = sim
            self.say(f"Genesys simulator on {sim.base_url}")
            pipeline = LocalPipeline(opts.env, genesys=GenesysEndpoint(sim.base_url, client_id, client_secret),
                                     cdk_out=cdk_out, mode=opts.mode, retry_time_scale=opts.retry_time_scale)
            stack.enter_context(pipeline)
            self.pipeline = pipeline
            self.say(f"stack {pipeline.stack_name} deployed from {template_path(cdk_out, opts.env)} "
                     f"({'moto server on ' + pipeline.endpoint_url if pipeline.endpoint_url else 'moto in-process'})")
            # What CloudWatch records for Lambda, Step Functions and SQS: `gcpipe local dashboard` reads it.
            stack.enter_context(ServiceMetricsLog(opts.run_dir / AWS_METRICS_LOG, sqs=pipeline.client("sqs")))
            self.integration = seed_integration(sim, pipeline)
            self.say(f"Genesys EventBridge integration {self.integration.integration_id}: its eventFilter drifts from "
                     "cdk.json (see `gcpipe --local genesys sync-filter`)")
            stack.enter_context(self.capture)
            stack.callback(pipeline.stop_pollers)
            pipeline.start_pollers()
            sender = Sender(pipeline, self.ledger)
            config = read_stack_config(pipeline)
            self.attribute_keys = tuple(config.attribute_map)
            if opts.events_file is not None:
                phases = [Phase("file", f"{opts.events_file}", file_events)]
            else:
                phases = build_mix(config, opts.count, rng, faults=opts.faults)
            watch = ProgressWatch(opts.timeout)
            timed_out = False
            progress = _progress(self.console)
            with progress:
                task = progress.add_task("sending", total=None)
                for phase in phases:
                    t0 = time.monotonic()
                    if progress is not None:
                        progress.console.print(f"[bold]{phase.name}[/]: {len(phase.events)} events, {phase.title}") \
                            if self.console is not None else None
                    phase.before(sim)
                    sender.send(phase.events)
                    phase.during(sim)
                    watch.restart()
                    acc = self.wait_for_outcomes(progress, task, watch)
                    phase.after(sim)
                    self.phase_log.append({"phase": phase.name, "description": phase.title, "events": len(phase.events),
                                           "seconds": round(time.monotonic() - t0, 2)})
                    if acc.unaccounted and watch.stalled:
                        timed_out = True
                        left = count_in_flight(pipeline)
                        self.notes.append(watch.explain(len(acc.unaccounted), left.queued, left.running))
                        break
            acc = self._resolve()
            summary = self._summary(acc, problems, time.monotonic() - started, log_file, timed_out)
            if opts.keep_running and on_ready is not None:
                on_ready(self, summary)
            return summary

    def stop(self) -> None:
        self._stop.set()

    def serve_until_stopped(self, state_file: Path) -> Any:
        """--keep-running: write the state file, keep the pollers going until stop() or Ctrl-C; then drain,
        or on a second Ctrl-C drop what is left and write its ids down (``shutdown.py``)."""
        from .shutdown import Shutdown  # noqa: PLC0415

        shutdown = Shutdown(self.pipeline, self.options.run_dir, self.say, stop_requested=self._stop)
        self.pipeline.write_state_file(
            state_file, genesys_integration_id=self.integration.integration_id if self.integration else None)
        try:
            with shutdown.signals():
                return shutdown.serve()
        finally:
            with contextlib.suppress(FileNotFoundError):
                Path(state_file).unlink()

    def _summary(self, acc: Accounting, problems: list[InputProblem], wall: float, log_file: Path,
                 timed_out: bool) -> RunSummary:
        sim, p = self.sim, self.pipeline
        writes = [{"method": w.method, "path": w.path, "conversation_id": w.conversation_id,
                   "participant_id": w.participant_id, "body": w.body} for w in sim.writes]
        requests = {
            "total": sim.request_count(),
            "api": sim.request_count("/api/"),
            "rate_limited_429": sim.request_count("/api/", status=429),
            "unavailable_5xx": sum(sim.request_count("/api/", status=s) for s in (500, 502, 503, 504)),
        }
        failed: list[FailedExecution] = []
        replay_hint = "local: gcpipe --local redrive {arn} (a new execution with the same input; moto has no " \
                      "RedriveExecution). On AWS: the console's Redrive button, or gcpipe --env ENV redrive {arn}"
        for ex in p.executions("FAILED") + p.executions("TIMED_OUT") + p.executions("ABORTED"):
            record = next((ln.record for ln in self.capture.lines if ln.outcome == "failed"
                           and ln.record.execution_arn == ex["executionArn"]), None)
            failed.append(FailedExecution(
                arn=ex["executionArn"], name=ex["name"], error=ex.get("error"),
                cause=(record.cause if record else None) or _short_cause(ex.get("cause")),
                failed_state=record.failed_state if record else None,
                replay=replay_hint.format(arn=ex["executionArn"]),
            ))
        notes = list(self.notes)
        if acc.foreign:
            notes.append(f"{acc.foreign} outcome line(s) for events this run did not send")
        iam = {"denied": [{"role": role, "action": d.action, "resource": d.resource} for role, d in p.permissions.denied],
               "unused": [{"role": u.role_name, "action": u.action, "resource": u.resource, "policy": u.source}
                          for u in p.permissions.unused()]}
        if iam["denied"]:
            notes.append(f"{len(iam['denied'])} AWS call(s) denied by the functions' IAM policies (see 'iam' / above)")
        return RunSummary(self.options.env, self.options.mode, list(self.ledger.events), acc, problems, writes,
                          sim.token_fetches, requests, failed, self.phase_log, wall, log_file, notes, timed_out,
                          self.attribute_keys, iam)


def _short_cause(cause: Any) -> str | None:
    if not cause:
        return None
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    except ValueError:
        pass
    return str(cause)[:300]


def _progress_text(acc: Accounting) -> str:
    short = {"applied": "applied", "duplicate": "dup", "filtered": "filtered", "stale": "stale",
             "dead_lettered": "DLQ", "failed": "failed", "skipped": "skipped"}
    return "outcomes " + " ".join(f"{short[o]} {acc.counts[o]}" for o in OUTCOMES)


class _NoProgress:
    console = None

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        return None


def _progress(console: Any) -> Any:
    if console is None:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


# ---------------------------------------------------------------------------- rendering


def render_permissions(summary: RunSummary, console: Any, *, unused: bool) -> None:
    """The AWS calls IAM denied and, with ``unused``, per role the grants no call used."""
    from rich.table import Table  # noqa: PLC0415

    denied = summary.iam.get("denied") or []
    if denied:
        t = Table(title="AWS calls denied by IAM (the function role's policy in the template)", title_justify="left")
        for c in ("role", "action", "resource"):
            t.add_column(c, overflow="fold")
        for d in denied:
            t.add_row(d["role"], d["action"], d["resource"])
        console.print(t)
    if unused:
        grants = summary.iam.get("unused") or []
        t = Table(title="granted but never used in this run (Lambda's own logs/X-Ray/event source mapping actions aside)",
                  title_justify="left")
        for c in ("role", "action", "resource", "policy"):
            t.add_column(c, overflow="fold")
        for g in grants:
            t.add_row(g["role"], g["action"], g["resource"], g["policy"])
        console.print(t if grants else "every permission granted to the functions was used")


def render_summary(summary: RunSummary, console: Any) -> None:
    from rich.table import Table  # noqa: PLC0415

    from genesys_pipeline.redaction import redact  # noqa: PLC0415

    acc = summary.accounting
    if acc.holds:
        console.print(f"[bold green]GenesysEvents-{summary.env}: every event accounted for[/]")
    elif summary.timed_out and not acc.over_accounted:
        console.print(f"[bold yellow]GenesysEvents-{summary.env}: stopped waiting with {len(acc.unaccounted)} event(s) "
                      "still in progress (see the note below)[/]")
    else:
        console.print(f"[bold red]GenesysEvents-{summary.env}: events NOT all accounted for[/]")
    t = Table()
    t.add_column("events", justify="left")
    t.add_column("count", justify="right")
    t.add_row("sent", str(acc.sent))
    for o in OUTCOMES:
        t.add_row(f"  {o.replace('_', '-')}", str(acc.counts[o]))
    t.add_row("accounted (sum of outcomes)", str(acc.total), style="bold" if acc.holds else "bold red")
    if acc.unaccounted:
        t.add_row("no outcome", str(len(acc.unaccounted)), style="red")
    if acc.superseded:
        t.add_row("failures resolved by a replay", str(acc.superseded))
    t.add_row("Genesys writes", write_kinds.explain(summary.writes, summary.attribute_keys, acc.counts["applied"]))
    t.add_row("Genesys token fetches", str(summary.token_fetches))
    t.add_row("Genesys 429 / 5xx answered", f"{summary.genesys_requests['rate_limited_429']} / {summary.genesys_requests['unavailable_5xx']}")
    t.add_row("wall time", f"{summary.wall_seconds:.1f} s")
    console.print(t)

    by_kind: dict[tuple[str, str], int] = {}
    for e in summary.events:
        if e.sent:
            by_kind[(e.kind, e.outcome or "NONE")] = by_kind.get((e.kind, e.outcome or "NONE"), 0) + 1
    k = Table(title="what each kind of event became", title_justify="left")
    for c in ("sent as", "outcome", "count"):
        k.add_column(c)
    for (kind, outcome), n in sorted(by_kind.items()):
        k.add_row(kind, outcome.replace("_", "-"), str(n))
    console.print(k)

    dead = [e for e in summary.events if e.outcome == "dead_lettered"]
    if dead:
        d = Table(title="dead-lettered (on the DLQ, with their reasons)", title_justify="left")
        for c in ("line" if any(e.line for e in dead) else "kind", "event id", "reason"):
            d.add_column(c, overflow="fold")
        for e in dead:
            d.add_row(str(e.line) if e.line else e.kind, e.event_id or "", redact(e.reason or ""))
        console.print(d)

    if summary.failed_executions:
        f = Table(title="failed executions (redrivable)", title_justify="left")
        for c in ("execution", "failed at", "error", "cause"):
            f.add_column(c, overflow="fold")
        for fx in summary.failed_executions:
            f.add_row(fx.name, fx.failed_state or "", fx.error or "", redact(fx.cause or ""))
        console.print(f)
        console.print("replay them: [bold]gcpipe --local redrive <arn>[/] (locally a new execution with the same "
                      "input: moto has no RedriveExecution); on AWS, the console's [bold]Redrive[/] button or "
                      "[bold]gcpipe --env <env> redrive <arn>[/] (RedriveExecution, resumes at the Process state).")
        for fx in summary.failed_executions:
            console.print(f"  {fx.arn}", soft_wrap=True)

    for p in summary.input_problems:
        console.print(f"[red]input {p}[/]")
    for e in summary.send_errors:
        console.print(f"[red]not sent{' (line ' + str(e.line) + ')' if e.line else ''}: {e.send_error}[/]")
    if acc.unaccounted:
        console.print(f"[red]{len(acc.unaccounted)} event(s) have no outcome:[/]")
        for e in acc.unaccounted[:20]:
            console.print(f"  {('line ' + str(e.line)) if e.line else e.kind} event {e.event_id} dedup key {e.dedup_key}"
                          f"{' (parser: ' + e.invalid_reason + ')' if e.invalid_reason else ''}")
    for o in acc.over_accounted:
        console.print(f"[red]more than one outcome: {o}[/]")
    for n in summary.notes:
        console.print(f"[dim]note: {n}[/]")
    console.print(f"[dim]{acc.as_json()['equation']}; Lambda logs and metrics: {summary.log_file} "
                  f"(the previous run's: {previous_of(Path(summary.log_file)).name})[/]")


__all__ = [
    "LocalRun", "RunOptions", "RunSummary", "RunnerError", "StackConfig", "build_mix", "ensure_synthesized",
    "read_events_file", "read_stack_config", "render_summary", "retry_attempts",
]
