"""``gcpipe local chaos``: the local pipeline under a seeded storm of faults at every seam, then the promise
checked: every event accounted for, none lost, none written twice with different values.

- ``plan``: the seeded fault schedule (Genesys faults per traffic wave, the AWS fault rules the workers
  install, Lambda throttles, delivery faults);
- ``throttles``: Lambda throttles, in the local runtime's reserved-concurrency seam;
- ``traffic``: the events (the run's generated mix, in waves, plus SQS redeliveries);
- ``run``: starts the simulator and the stack, sends the waves with their faults, waits until quiet,
  redrives every failed execution once, waits again;
- ``report``: the figures (invariant, lost, divergent and identical repeated writes, failures before and
  after the redrive, faults per kind, wall time), rich and JSON.
"""
