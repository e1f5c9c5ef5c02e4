"""One chaos run: the local pipeline (moto server, worker processes, the Genesys simulator) on N events under
the seeded fault plan, then one redrive of every failed execution, then the figures (``report``)."""

from __future__ import annotations

import contextlib
import math
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from gcpipe.local.ledger import Accounting, DeadLetter, Ledger, OutcomeCapture, dead_letter_from_message, peek_queue
from gcpipe.local.progress_watch import ProgressWatch
from gcpipe.local.run import RunnerError
from gcpipe.local.run.lambda_output import LambdaOutput
from gcpipe.local.run.sender import RunSender
from gcpipe.local.run.stack_config import read_stack_config
from gcpipe.local.run.synth import ensure_synthesized
from gcpipe.local.run_files import RUN_DIR
from gcpipe.local.stepfunctions import REPLAY_MARK

from .plan import HANG_SECONDS, STORM_SECONDS, ChaosPlan, WaveFaults, make_plan
from .report import ChaosReport, analyse_writes
from .traffic import generate, redeliveries_of

if TYPE_CHECKING:
    from gcpipe.local.pipeline import LocalPipeline
    from gcpipe.simulator import GenesysSimulator

FAULT_HOOK = "gcpipe.local.faults:install_from_env"
# Time compression of the timeouts, with the retry waits: a processor's idempotency lock lasts until its
# attempt's deadline (the function's timeout), and the state machine's IdempotencyAlreadyInProgressError
# retries (90 s in all on AWS, over a 30 s timeout) must still outlast it at the compressed scale.
GENESYS_READ_TIMEOUT_SECONDS = 2.0
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
FAST_FORWARD_AFTER_SECONDS = 2.0  # how often records left in flight (a crashed or throttled dispatch) are made visible


@dataclass
class ChaosOptions:
    events: int
    seed: int
    env: str = "dev"
    mode: str = "server"
    # The in-progress retries then wait 90 s x 0.15 = 13.5 s in all: over the 10 s processor timeout of a run
    # (``ChaosPlan.processor_timeout_seconds``), which fits a worker's cold start, token fetch and one retried write
    # on 2 busy cores (4 s did not: a 5,000-event run timed out 580 executions that had done nothing wrong).
    retry_time_scale: float = 0.15
    quiet_timeout: float = 120.0  # give up waiting after this long without a new outcome
    cdk_out: Path | None = None
    run_dir: Path = RUN_DIR
    aws_fault_rate: float = 0.02
    genesys_rate: float | None = 20.0  # the request budget's requests per second for the run (None: the stack's)
    # The processor's reserved concurrency for the run. Synth's rule (infra/config.py: requestsPerSecond x 1 s per
    # event <= processorReservedConcurrency) must hold at the run's rate too: at 50/s against dev's 5, thousands
    # of executions waited for a processor and 623 failed with Lambda.TooManyRequestsException.
    processor_concurrency: int = 20


@dataclass
class _Waiting:
    dead_letters: dict[str, DeadLetter] = field(default_factory=dict)
    fast_forwarded: int = 0


class ChaosRun:
    def __init__(self, options: ChaosOptions, *, say: Callable[[str], None] | None = None):
        self.options = options
        self.say = say or (lambda _msg: None)
        self.ledger = Ledger()
        self.capture = OutcomeCapture()
        self.plan: ChaosPlan | None = None
        self.genesys_faults: Counter[str] = Counter()
        self._waiting = _Waiting()

    # -- waiting ----------------------------------------------------------------------------
    def _scan_dead_letters(self, pipeline: LocalPipeline) -> None:
        for m in peek_queue(pipeline.client("sqs"), pipeline.outputs["DeadLetterQueueUrl"]):
            self._waiting.dead_letters.setdefault(m["MessageId"], dead_letter_from_message(m))

    def accounting(self) -> Accounting:
        return self.ledger.resolve(self.capture.lines, self._waiting.dead_letters.values())

    def wait_quiet(self, pipeline: LocalPipeline) -> bool:
        """Until the pipeline is idle and every sent event has its outcome; False when no outcome came for
        ``quiet_timeout`` seconds."""
        watch = ProgressWatch(self.options.quiet_timeout)
        watch.restart()
        stuck_since: float | None = None
        last_scan = 0.0
        while True:
            now = time.monotonic()
            try:
                state = pipeline.state()
            except Exception:  # noqa: BLE001 - the emulator answered badly once; look again
                if watch.stalled:  # ... but an emulator that never answers again is a stall, not a wait forever
                    return False
                time.sleep(0.2)
                continue
            if now - last_scan > 5.0 or (state.idle and now - last_scan > 1.0):
                self._scan_dead_letters(pipeline)
                last_scan = now
            acc = self.accounting()
            watch.observe(acc.sent - len(acc.unaccounted))
            if state.idle and not acc.unaccounted:
                self._scan_dead_letters(pipeline)
                if not self.accounting().unaccounted and pipeline.state().idle:
                    return True
            if watch.stalled:
                return False
            # Time compression: the records a poller left after a failed dispatch (a throttle, a crash) come
            # back after FAST_FORWARD_AFTER_SECONDS instead of the queue's visibility timeout, busy or not.
            stuck_since = stuck_since or now
            if now - stuck_since > FAST_FORWARD_AFTER_SECONDS:
                self._waiting.fast_forwarded += pipeline.expire_in_flight()
                stuck_since = None
            time.sleep(0.1)

    # -- faults -----------------------------------------------------------------------------
    def _genesys_faults_on(self, sim: GenesysSimulator, wave: WaveFaults) -> None:
        for fault in wave.faults:
            self.genesys_faults[fault.kind] += 1
            if fault.kind == "genesys-429-storm":
                sim.set_rate_limit(fault.count, retry_after=fault.retry_after)
                timer = threading.Timer(STORM_SECONDS, sim.set_rate_limit, args=(None,))
                timer.daemon = True
                timer.start()
            elif fault.kind == "genesys-5xx-burst":
                sim.fail_next(fault.count, status=fault.status)
            elif fault.kind == "genesys-read-timeout":
                sim.hang_next(fault.count, seconds=HANG_SECONDS)
            elif fault.kind == "genesys-connection-reset":
                sim.reset_next(fault.count)
            elif fault.kind == "genesys-token-5xx":
                sim.fail_token_next(fault.count, status=fault.status)
            elif fault.kind == "genesys-token-revoked":
                sim.revoke_tokens()

    def _install_aws_faults(self, pipeline: LocalPipeline, plan: ChaosPlan) -> tuple[Path, object]:
        from gcpipe.local.faults import PLAN_VARIABLE
        from gcpipe.local.lambda_runtime import RUNTIME

        from .throttles import RandomThrottles

        plan_path, log = plan.write_worker_plan(self.options.run_dir / "chaos")
        RUNTIME.worker_hooks = [FAULT_HOOK]
        RUNTIME.worker_environment = {PLAN_VARIABLE: str(plan_path)}
        outputs = pipeline.outputs
        throttles = RandomThrottles(
            {outputs["DispatcherFunctionName"], outputs["ProcessorFunctionName"]}, plan.throttle_probability, plan.seed
        )
        RUNTIME.concurrency = throttles
        # Time compression, as the retry waits: the request budget runs at ``genesys_rate`` requests per second
        # (the simulator's own 429 storms are the rate limit under test), and a processor timeout costs less.
        for key in ("DispatcherFunctionName", "ProcessorFunctionName", "ErrorLoggerFunctionName"):
            name = outputs.get(key)
            if not name:
                continue
            overrides = {"GENESYS_READ_TIMEOUT_SECONDS": str(GENESYS_READ_TIMEOUT_SECONDS)}
            if self.options.genesys_rate:
                overrides.update(
                    REQUEST_BUDGET_RATE=str(self.options.genesys_rate),
                    REQUEST_BUDGET_BURST=str(int(self.options.genesys_rate)),
                )
            RUNTIME.set_environment_overrides(name, overrides)
        # A processor timeout costs its whole timeout: shortened for the run, as the retry waits are.
        lam = pipeline.client("lambda")
        lam.update_function_configuration(
            FunctionName=outputs["ProcessorFunctionName"], Timeout=plan.processor_timeout_seconds
        )
        if self.options.genesys_rate:
            lam.put_function_concurrency(
                FunctionName=outputs["ProcessorFunctionName"],
                ReservedConcurrentExecutions=self.options.processor_concurrency,
            )
        return log, throttles

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> ChaosReport:
        from gcpipe.local.deploy import GenesysEndpoint
        from gcpipe.local.integration import seed_integration
        from gcpipe.local.pipeline import LocalPipeline
        from gcpipe.simulator import GenesysSimulator

        opts = self.options
        started = time.monotonic()
        rng = random.Random(opts.seed)
        cdk_out = ensure_synthesized(opts.env, opts.cdk_out, say=self.say)
        client_id, client_secret = f"chaos-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        sim = GenesysSimulator(client_id=client_id, client_secret=client_secret)
        with contextlib.ExitStack() as stack:
            stack.enter_context(LambdaOutput(opts.run_dir / "lambdas.log"))
            stack.enter_context(sim)
            pipeline = LocalPipeline(
                opts.env,
                genesys=GenesysEndpoint(sim.base_url, client_id, client_secret),
                cdk_out=cdk_out,
                mode=opts.mode,
                retry_time_scale=opts.retry_time_scale,
            )
            stack.enter_context(pipeline)
            seed_integration(sim, pipeline)
            config = read_stack_config(pipeline)
            waves = generate(config, opts.events, rng, redelivery_share=0.03)
            self.plan = plan = make_plan(opts.seed, len(waves.waves), aws_rate=opts.aws_fault_rate)
            check_time_compression(
                config.in_progress_wait_seconds, opts.retry_time_scale, plan.processor_timeout_seconds
            )
            if opts.genesys_rate:
                check_processor_capacity(opts.genesys_rate, opts.processor_concurrency)
            log, throttles = self._install_aws_faults(pipeline, plan)
            stack.enter_context(self.capture)
            stack.callback(pipeline.stop_pollers)
            pipeline.start_pollers()
            sender = RunSender(pipeline, self.ledger)
            per_wave = _spread(waves.redeliveries, len(waves.waves))
            self.say(f"chaos: {opts.events} events in {len(waves.waves)} waves, seed {opts.seed}")
            for wave, events, redeliveries in zip(plan.waves, waves.waves, per_wave, strict=True):
                self._genesys_faults_on(sim, wave)
                sender.send(events)
                sender.send(redeliveries_of(self.ledger.sent, redeliveries, rng, pipeline.account_id, pipeline.region))
                time.sleep(0.2)
            self.say(f"sent in {time.monotonic() - started:.1f} s; waiting until quiet")
            quiet = self.wait_quiet(pipeline)
            self.say(f"quiet after {time.monotonic() - started:.1f} s")
            before = self.accounting()
            failed = [e for e in pipeline.executions() if e["status"] in FAILED_STATUSES]
            redriven = 0
            for execution in failed:
                try:
                    pipeline.replay(execution["executionArn"])
                    redriven += 1
                except Exception as exc:  # noqa: BLE001 - reported: a failure that could not be redriven stays failed
                    self.say(f"could not redrive {execution['name']}: {exc}")
            quiet = self.wait_quiet(pipeline) and quiet
            self.say(f"{redriven} failed execution(s) redriven; quiet again after {time.monotonic() - started:.1f} s")
            after = self.accounting()
            still_failed = [
                e for e in pipeline.executions() if e["status"] in FAILED_STATUSES and REPLAY_MARK in e["name"]
            ]
            aws_faults = Counter(
                line.strip() for line in Path(str(log)).read_text(encoding="utf-8").splitlines() if line.strip()
            )
            for name, n in throttles.injected.items():  # type: ignore[attr-defined]
                kind = (
                    "lambda-throttle-dispatcher"
                    if name == pipeline.outputs["DispatcherFunctionName"]
                    else "lambda-throttle-processor"
                )
                aws_faults[kind] += n
            faults = Counter(self.genesys_faults) + aws_faults
            faults["sqs-redelivery"] += sum(1 for e in self.ledger.sent if e.kind == "redelivery")
            faults["duplicate-delivery"] += sum(1 for e in self.ledger.sent if e.kind == "duplicate")
            writes = analyse_writes(
                [{"method": w.method, "path": w.path, "body": w.body} for w in sim.writes], config.attribute_map
            )
            return ChaosReport(
                events=opts.events,
                seed=opts.seed,
                accounting=after,
                failed_before_redrive=before.counts["failed"],
                failed_executions_redriven=redriven,
                writes=writes,
                faults=dict(sorted(faults.items())),
                wall_seconds=time.monotonic() - started,
                quiet=quiet,
                fast_forwarded=self._waiting.fast_forwarded,
                sends_failed=sum(1 for e in self.ledger.events if e.send_error),
                failures_before_redrive=_errors(failed),
                failures_after_redrive=_errors(still_failed),
            )


def check_time_compression(in_progress_wait: float, scale: float, timeout: int) -> None:
    """The rule synth enforces (infra/config.py), at the run's compressed scale: a retry of a concurrent attempt
    must outlast that attempt's timeout, or its in-progress record fails the event that is still being written."""
    if in_progress_wait * scale <= timeout:
        raise RunnerError(
            f"retry_time_scale {scale}: the in-progress retries would wait {in_progress_wait * scale:.1f} s, not over "
            f"the run's {timeout} s processor timeout; expected a scale above {timeout / max(in_progress_wait, 1):.3f}"
        )


def check_processor_capacity(rate: float, concurrency: int) -> None:
    """Synth's rule at the run's rate: the processors the budget admits at once (1 s each) have a slot."""
    if rate > concurrency:
        raise RunnerError(
            f"genesys_rate {rate:g}/s needs a processor reserved concurrency of at least {math.ceil(rate)} "
            f"(1 s per event); processor_concurrency is {concurrency}"
        )


def _errors(executions: list[dict]) -> dict[str, int]:
    """Failed executions per error name (Step Functions' ``error``: the processor's error type)."""
    return dict(Counter(str(e.get("error") or e.get("status")) for e in executions))


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, max(1, parts))
    return [base + (1 if i < extra else 0) for i in range(parts)]


__all__ = ["ChaosOptions", "ChaosRun", "check_processor_capacity", "check_time_compression"]
