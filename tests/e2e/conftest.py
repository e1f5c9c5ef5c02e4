"""End-to-end runs of the local pipeline: the synthesized dev template deployed on moto
(in-process), the real handlers, the Genesys simulator. ASL Retry sleeps are skipped.

Every test sends events the way Genesys does (PutPartnerEvents on the partner bus), lets
the pipeline run to idle, and checks the accounting invariant with the runner's own
ledger (gcpipe.local.ledger): sent = applied + duplicate + filtered + stale +
dead-lettered + failed, each event with exactly one outcome.

``GCPIPE_TEST_CDK_OUT=<dir>`` reuses a cloud assembly synthesized elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from gcpipe import traffic as gen
from gcpipe.local.deploy import GenesysEndpoint
from gcpipe.local.ledger import Accounting, Ledger, OutcomeCapture, TrackedEvent, dead_letter_from_message, peek_queue
from gcpipe.local.run.sender import RunSender
from gcpipe.local.run.stack_config import StackConfig, read_stack_config
from gcpipe.simulator import GenesysSimulator

ENV = "dev"
CLIENT_ID, CLIENT_SECRET = "e2e-client", "e2e-secret"


# The files whose runs use the checkout's .local-run (lambdas.log, endpoints.json): two such runs side by side
# rotate each other's files, so they share one xdist worker. The other e2e tests (and the pipeline benchmarks) run
# a LocalPipeline of their own, one at a time per process, in the "e2e" group on another worker.
CHECKOUT_RUN_FILES = frozenset(
    {
        "test_kept_running.py",
        "test_readme_local.py",
        "test_worker_processes.py",
        "test_local_run.py",
        "test_local_dashboard.py",
        "test_local_integration.py",
    }
)
E2E_GROUPS = ("e2e", "local-run")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if "tests/e2e/" in path.as_posix():
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("local-run" if path.name in CHECKOUT_RUN_FILES else "e2e"))


class Harness:
    """The stack on moto, the simulator, and the runner's ledger and sender."""

    def __init__(self, pipeline: Any, sim: GenesysSimulator, capture: OutcomeCapture):
        self.pipeline = pipeline
        self.sim = sim
        self.capture = capture
        self.ledger = Ledger()
        self.sender = RunSender(pipeline, self.ledger)
        self.config: StackConfig = read_stack_config(pipeline)
        self.rng = random.Random(1234)

    # -- events ---------------------------------------------------------------------------
    @property
    def queue_id(self) -> str:
        return self.config.queue_ids[0] if self.config.queue_ids else gen.SAMPLE_QUEUE_ID

    def event(self, topic: str = "acd.end", **kw: Any) -> dict[str, Any]:
        kw.setdefault("queue_id", self.queue_id)
        kw.setdefault("source", self.config.bus_name)
        kw.setdefault("rng", self.rng)
        return gen.make_event(topic, **kw)

    def send(self, *envelopes: dict[str, Any], kind: str = "event") -> list[TrackedEvent]:
        tracked = [TrackedEvent(index=0, kind=kind, envelope=e) for e in envelopes]
        self.sender.send(tracked)
        assert not [t.send_error for t in tracked if t.send_error]
        return tracked

    # -- running ----------------------------------------------------------------------------
    def settle(self, max_rounds: int = 20) -> None:
        """Run to idle; records left in flight by failed dispatches get their visibility fast-forwarded."""
        for _ in range(max_rounds):
            assert self.pipeline.drain(60), "the pipeline did not go idle"
            if not self.pipeline.expire_in_flight():
                break
        assert self.pipeline.drain(60)

    def dead_letter_messages(self) -> list[dict[str, Any]]:
        return peek_queue(self.pipeline.client("sqs"), self.pipeline.outputs["DeadLetterQueueUrl"])

    def account(self) -> Accounting:
        dls = [dead_letter_from_message(m) for m in self.dead_letter_messages()]
        return self.ledger.resolve(self.capture.lines, dls)

    def assert_accounted(self) -> Accounting:
        acc = self.account()
        detail = json.dumps(acc.as_json(), indent=1)
        assert acc.sent == acc.total, detail
        assert not acc.unaccounted, detail
        assert not acc.over_accounted, detail
        assert acc.holds
        return acc

    # -- Genesys effects --------------------------------------------------------------------
    def processor_writes(self, conversation_id: str | None = None) -> list[Any]:
        """Writes of the processor (its configured attributes), not the error logger's failure marks."""
        keys = set(self.config.attribute_map)
        return [
            w
            for w in self.sim.writes
            if (conversation_id is None or w.conversation_id == conversation_id)
            and isinstance(w.body, dict)
            and keys & set((w.body.get("attributes") or {}))
        ]

    def executions(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.pipeline.executions(status)


@contextlib.contextmanager
def running_harness(cdk_out: Path) -> Iterator[Harness]:
    """The stack of ``cdk_out`` on moto with the simulator, the outcome capture attached."""
    from gcpipe.local.pipeline import LocalPipeline

    with GenesysSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as sim:
        genesys = GenesysEndpoint(sim.base_url, CLIENT_ID, CLIENT_SECRET)
        with LocalPipeline(ENV, cdk_out=cdk_out, genesys=genesys, mode="in-process", retry_time_scale=0.0) as pipeline:
            with OutcomeCapture() as capture:
                yield Harness(pipeline, sim, capture)


@pytest.fixture
def e2e(synthesized: Path) -> Iterator[Harness]:
    with running_harness(synthesized) as harness:
        yield harness


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
