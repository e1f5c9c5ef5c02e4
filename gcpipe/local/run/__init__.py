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

One job per module: ``synth`` (the cloud assembly), ``events_file`` (``--events``), ``stack_config``
(what the deployed stack says about itself), ``scenario`` (the generated phases), ``sender`` (each
event by its route), ``lambda_output`` (the Lambdas' output to the log file), ``loop`` (the run),
``summary`` (what it found) and ``report`` (what it prints).
"""

from __future__ import annotations

from .errors import RunnerError
from .loop import LocalRun, RunOptions
from .summary import RunSummary

__all__ = ["LocalRun", "RunOptions", "RunSummary", "RunnerError"]
