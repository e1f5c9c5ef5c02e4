"""gcpipe: the operator CLI, the local runtime (moto + Genesys simulator) and benchmarks' plumbing.

The Lambda code asset lives in ``lambdas/`` (its root is what Lambda puts on
``sys.path``); the CLI validates events with the very same domain package, so
it puts that asset root on the path too.
"""
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
if str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))
