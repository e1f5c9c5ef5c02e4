"""gcpipe: the operator CLI, the local runtime (moto + Genesys simulator) and benchmarks' plumbing.

The Lambda code asset lives in ``lambdas/``; its root is what Lambda puts on
``sys.path`` (``/var/task``), and it is what the local runtime gives each
function's worker as its path. The CLI validates events with the very same
domain package, ``genesys_pipeline``: a package of this distribution
(pyproject.toml maps it from ``lambdas/genesys_pipeline``), so importing gcpipe
changes no path. The handlers (``processor.handler`` ...) and the write-back
plugins (``extensions``) are not part of the distribution: only the functions'
code directories hold them.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"  # the Lambda code asset's source (a checkout only)
