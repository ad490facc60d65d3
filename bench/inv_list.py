"""Time `inv --list` against `python -c "import invoke"` (median of 10 each, run
alternately so both see the same machine state) and print the ratio.

`inv --list` should pay for invoke and our task modules only: no boto3,
kubernetes, fabric, psycopg or rich at import time. Target: ratio < 1.5.
Exit 1 when the ratio is at or above the target.

    python bench/inv_list.py [--runs 10] [--target 1.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # the inv of this interpreter's environment: one found on PATH may be a shim (pyenv's
    # are shell scripts) that adds its own start-up time to every run
    local = Path(sys.executable).parent / "inv"
    inv = str(local) if local.exists() else (shutil.which("inv") or shutil.which("invoke"))
    if inv is None:
        print("inv not found on PATH; install the project (pip install -e .)", file=sys.stderr)
        return 2
    baseline_cmd = [sys.executable, "-c", "import invoke"]
    list_cmd = [inv, "--list"]
    timed(baseline_cmd), timed(list_cmd)  # warm the page cache for both
    baseline, listing = [], []
    for _ in range(args.runs):
        baseline.append(timed(baseline_cmd))
        listing.append(timed(list_cmd))
    b, i = statistics.median(baseline), statistics.median(listing)
    ratio = i / b
    result = {
        "import_invoke_ms": round(b * 1000, 1),
        "inv_list_ms": round(i * 1000, 1),
        "ratio": round(ratio, 2),
        "target": args.target,
        "runs": args.runs,
        "ok": ratio < args.target,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"python -c 'import invoke': {result['import_invoke_ms']} ms (median of {args.runs})")
        print(f"inv --list:                {result['inv_list_ms']} ms (median of {args.runs})")
        print(f"ratio: {result['ratio']} (target < {args.target}) -> {'OK' if result['ok'] else 'TOO SLOW'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
