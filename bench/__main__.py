"""``python -m bench [--smoke] [--only a,b]``: every benchmark, one after another, each writing bench/results/<name>.json.

Benchmarks are not part of ``make test``; tests/bench/test_bench_smoke.py runs each at smoke size.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

ORDER = ("cost", "coldstart", "tokens", "dispatcher", "throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated subset of {', '.join(ORDER)}")
    args = parser.parse_args(argv)
    failed = []
    for name in [n for n in args.only.split(",") if n]:
        module = importlib.import_module(f"bench.{name}")
        try:
            module.main(["--smoke"] if args.smoke else [])
        except Exception:  # noqa: BLE001 - one benchmark's failure must not hide the others' results
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
