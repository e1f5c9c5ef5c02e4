"""`python -m gcpipe.cli` (same as the `gcpipe` console script)."""

from . import main

main()
