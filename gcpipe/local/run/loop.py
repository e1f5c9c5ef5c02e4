"""One ``gcpipe local run``: start the simulator and the stack, send each phase, follow every event to its
outcome, then summarize; with ``--keep-running``, serve until Ctrl-C (``shutdown.py``)."""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..ledger import Accounting, DeadLetter, Ledger, OutcomeCapture, TrackedEvent, dead_letter_from_message, peek_queue
from ..progress_watch import ProgressWatch
from ..run_files import RUN_DIR
from ..service_metrics import AWS_METRICS_LOG, ServiceMetricsLog
from ..shutdown import count_in_flight
from .events_file import InputProblem, read_events_file
from .lambda_output import LambdaOutput
from .report import progress_bar, progress_text
from .scenario import Phase, build_mix
from .sender import RunSender
from .stack_config import read_stack_config
from .summary import RunRecord, RunSummary, summarize
from .synth import ensure_synthesized, template_path

if TYPE_CHECKING:
    from gcpipe.simulator import GenesysSimulator

    from ..integration import LocalIntegration
    from ..pipeline import LocalPipeline, PipelineState

DEFAULT_RETRY_TIME_SCALE = 0.02  # ASL Retry waits at 2% of real time: a 20 s backoff takes 0.4 s
FAST_FORWARD_AFTER_SECONDS = 2.0  # records left in flight this long are made visible (local time compression)
DLQ_SCAN_SECONDS = 5.0  # how often a run peeks at the DLQ while the pipeline is busy


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
        self.pipeline: LocalPipeline | None = None
        self.sim: GenesysSimulator | None = None
        self.attribute_keys: tuple[str, ...] = ()
        self.integration: LocalIntegration | None = None  # once deployed
        self._output: LambdaOutput | None = None
        self._stop = threading.Event()

    # -- following the events -----------------------------------------------------------------
    def _scan_dead_letters(self, pipeline: LocalPipeline) -> None:
        for m in peek_queue(pipeline.client("sqs"), pipeline.outputs["DeadLetterQueueUrl"]):
            self.dead_letters.setdefault(m["MessageId"], dead_letter_from_message(m))

    def _resolve(self) -> Accounting:
        return self.ledger.resolve(self.capture.lines, self.dead_letters.values())

    @staticmethod
    def _state(pipeline: LocalPipeline) -> PipelineState | None:
        try:
            return pipeline.state()
        except Exception:  # noqa: BLE001 - the emulator is going away
            return None

    def wait_for_outcomes(self, pipeline: LocalPipeline, progress: Any, task: Any, watch: ProgressWatch) -> Accounting:
        """Until every sent event has its outcome and the pipeline is idle (or no new outcome for a while)."""
        stalled_since: float | None = None
        last_scan = 0.0
        while True:
            self.say_lambda_output()
            now = time.monotonic()
            state = self._state(pipeline)
            idle = state is not None and state.idle
            # Each peek at the DLQ is a receive (SQS has no other way to look), which `dlq show`
            # reports: look seldom while the pipeline works, and when it goes idle.
            if now - last_scan > DLQ_SCAN_SECONDS or (idle and now - last_scan > 1.0):
                self._scan_dead_letters(pipeline)
                last_scan = now
            acc = self._resolve()
            watch.observe(acc.sent - len(acc.unaccounted))
            progress.update(
                task, total=acc.sent, completed=acc.sent - len(acc.unaccounted), description=progress_text(acc)
            )
            if idle and not acc.unaccounted:
                self._scan_dead_letters(pipeline)
                acc = self._resolve()
                if not acc.unaccounted:
                    return acc
            if watch.stalled:
                return acc
            if state is not None and state.stuck_in_flight:
                stalled_since = stalled_since or now
                if now - stalled_since > FAST_FORWARD_AFTER_SECONDS:
                    moved = pipeline.expire_in_flight()
                    if moved:
                        self.notes.append(
                            f"fast-forwarded the visibility timeout of {moved} record(s) left in flight "
                            "after a failed dispatch (local time compression)"
                        )
                    stalled_since = None
            else:
                stalled_since = None
            time.sleep(0.1)

    def say_lambda_output(self) -> None:
        if self._output is not None:
            self._output.ensure()

    # -- the run ---------------------------------------------------------------------------
    def run(self, on_ready: Callable[[LocalRun, RunSummary], None] | None = None) -> RunSummary:
        from gcpipe.simulator import GenesysSimulator

        from ..deploy import GenesysEndpoint
        from ..integration import seed_integration
        from ..pipeline import LocalPipeline

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
            pipeline = LocalPipeline(
                opts.env,
                genesys=GenesysEndpoint(sim.base_url, client_id, client_secret),
                cdk_out=cdk_out,
                mode=opts.mode,
                retry_time_scale=opts.retry_time_scale,
            )
            stack.enter_context(pipeline)
            self.pipeline = pipeline
            self.say(
                f"stack {pipeline.stack_name} deployed from {template_path(cdk_out, opts.env)} "
                f"({'moto server on ' + pipeline.endpoint_url if pipeline.endpoint_url else 'moto in-process'})"
            )
            # What CloudWatch records for Lambda, Step Functions and SQS: `gcpipe local dashboard` reads it.
            stack.enter_context(ServiceMetricsLog(opts.run_dir / AWS_METRICS_LOG, sqs=pipeline.client("sqs")))
            self.integration = seed_integration(sim, pipeline)
            self.say(
                f"Genesys EventBridge integration {self.integration.integration_id}: its eventFilter drifts from "
                "cdk.json (see `gcpipe --local genesys sync-filter`)"
            )
            stack.enter_context(self.capture)
            stack.callback(pipeline.stop_pollers)
            pipeline.start_pollers()
            sender = RunSender(pipeline, self.ledger)
            config = read_stack_config(pipeline)
            self.attribute_keys = tuple(config.attribute_map)
            if opts.events_file is not None:
                phases = [Phase("file", f"{opts.events_file}", file_events)]
            else:
                phases = build_mix(config, opts.count, rng, faults=opts.faults)
            timed_out = self._send_phases(pipeline, sim, sender, phases)
            record = RunRecord(
                opts.env,
                opts.mode,
                list(self.ledger.events),
                self._resolve(),
                self.capture.lines,
                problems,
                self.phase_log,
                time.monotonic() - started,
                log_file,
                self.notes,
                timed_out,
                self.attribute_keys,
            )
            summary = summarize(record, sim, pipeline)
            if opts.keep_running and on_ready is not None:
                on_ready(self, summary)
            return summary

    def _send_phases(
        self, pipeline: LocalPipeline, sim: GenesysSimulator, sender: RunSender, phases: list[Phase]
    ) -> bool:
        """Each phase: its fault on, its events sent, its outcomes awaited, its fault off. True when it stopped
        waiting (no new outcome for ``--timeout`` seconds)."""
        watch = ProgressWatch(self.options.timeout)
        with progress_bar(self.console) as progress:
            task = progress.add_task("sending", total=None)
            for phase in phases:
                t0 = time.monotonic()
                if self.console is not None:
                    progress.console.print(f"[bold]{phase.name}[/]: {len(phase.events)} events, {phase.title}")
                phase.before(sim)
                sender.send(phase.events)
                phase.during(sim)
                watch.restart()
                acc = self.wait_for_outcomes(pipeline, progress, task, watch)
                phase.after(sim)
                self.phase_log.append(
                    {
                        "phase": phase.name,
                        "description": phase.title,
                        "events": len(phase.events),
                        "seconds": round(time.monotonic() - t0, 2),
                    }
                )
                if acc.unaccounted and watch.stalled:
                    left = count_in_flight(pipeline)
                    self.notes.append(watch.explain(len(acc.unaccounted), left.queued, left.running))
                    return True
        return False

    def stop(self) -> None:
        self._stop.set()

    def serve_until_stopped(self, state_file: Path) -> Any:
        """--keep-running: write the state file, keep the pollers going until stop() or Ctrl-C; then drain,
        or on a second Ctrl-C drop what is left and write its ids down (``shutdown.py``)."""
        from ..shutdown import Shutdown

        assert self.pipeline is not None, "run() first"
        shutdown = Shutdown(self.pipeline, self.options.run_dir, self.say, stop_requested=self._stop)
        self.pipeline.write_state_file(
            state_file, genesys_integration_id=self.integration.integration_id if self.integration else None
        )
        try:
            with shutdown.signals():
                return shutdown.serve()
        finally:
            with contextlib.suppress(FileNotFoundError):
                Path(state_file).unlink()


__all__ = ["DEFAULT_RETRY_TIME_SCALE", "LocalRun", "RunOptions"]
