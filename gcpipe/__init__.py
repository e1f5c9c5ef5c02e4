"""gcpipe: the operator CLI, the local runtime (moto + Genesys simulator) and benchmarks' plumbing.

The Lambda code asset lives in ``lambdas/`` (its root is what Lambda puts on
``sys.path``); the CLI validates events with the very same domain package.
Installed (``pip install .``), ``genesys_pipeline`` is a package of the
distribution (pyproject.toml maps it from ``lambdas/genesys_pipeline``). In a
checkout, ``lambdas/`` also goes on the path, so the local runtime finds the
handlers (``processor.handler`` ...) and the extensions beside it.
"""
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
if LAMBDAS_DIR.is_dir() and str(LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDAS_DIR))
