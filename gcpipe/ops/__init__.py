"""Domain logic of the operator commands (``gcpipe ...``).

No click in here: each module takes a :class:`~gcpipe.ops.target.Target` and
plain arguments and returns plain results, so the CLI, the local runner and
tests can all drive it. Rendering (rich tables, progress, JSON) is the CLI's job.
"""
