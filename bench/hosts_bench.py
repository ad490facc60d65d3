"""`inv maint.hosts` over 20 real sshd hosts on loopback (tests/support/sshd_host.py; as root).

Prints medians of: the whole `inv maint.hosts --json` (process start included),
the in-process survey of the 20 hosts at once, the same survey one host at a
time (what a loop over hosts would cost), one host alone, and the CPU the
toolkit itself spends on one survey (the 20 test hosts' sshd sessions and
package-manager scripts share the same cores); and the ratio of the parallel
survey to one host (the goal: about 1x, not 20x; under 5 s total).

    python bench/hosts_bench.py [--hosts 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from invoke import Config
    from support.sshd_host import Fleet

    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core.config import load
    from spywatcher_ops.maintenance.hostfacts import survey

    tmp = Path(tempfile.mkdtemp(prefix="hosts-bench-"))
    fleet = Fleet(tmp / "hosts")
    try:
        for i in range(args.hosts):
            fleet.add(f"host-{i:02d}", os_id="debian" if i % 2 else "amzn")
        ssh = fleet.ssh_config()
        cfg = tmp / "bench.yaml"
        import yaml

        env_spec = {"kind": "aws", "region": "us-east-1", "ssh": ssh}
        cfg.write_text(
            yaml.safe_dump({"ops": {"state_dir": str(tmp / "state"), "environments": {"bench": env_spec}}})
        )
        config = Config(project_location=str(ROOT))
        config.load_project()
        config.ops.state_dir = str(tmp / "state")
        config.ops.environments["bench"] = env_spec
        port = build(load(config), "bench").parts.hosts()
        one = port.list()[:1]

        class One:
            known_hosts = port.known_hosts
            connect_timeout = port.connect_timeout

            def list(self):  # noqa: ANN202
                return one

            def connect(self, name, timeout=None):  # noqa: ANN001, ANN202
                return port.connect(name, timeout=timeout)

        def timed(fn) -> float:  # noqa: ANN001
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        def inv() -> None:
            res = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "invoke",
                    "-f",
                    str(cfg),
                    "maint.hosts",
                    "--env",
                    "bench",
                    "--timeout",
                    "30",
                    "--json",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**os.environ, "INVOKE_OPS_STATE_DIR": str(tmp / "state")},
            )
            data = json.loads(res.stdout)
            assert res.returncode == 0 and all(h["reachable"] for h in data["hosts"]), res.stderr

        rows = {
            "inv maint.hosts (20 hosts)": [timed(inv) for _ in range(args.runs)],
            "survey, all at once": [timed(lambda: survey(port, timeout=30)) for _ in range(args.runs)],
            "one host alone": [timed(lambda: survey(One(), timeout=30)) for _ in range(args.runs)],
            "survey, one at a time": [timed(lambda: survey(port, timeout=30, workers=1))],
        }
        import resource

        def cpu() -> float:
            r = resource.getrusage(resource.RUSAGE_SELF)
            return r.ru_utime + r.ru_stime

        cpus = []
        for _ in range(args.runs):  # the toolkit's own CPU: the rest of the wall time is the test hosts' work
            before = cpu()
            survey(port, timeout=30)
            cpus.append(cpu() - before)
        rows["client CPU of one survey"] = cpus
        med = {k: statistics.median(v) for k, v in rows.items()}
        for k, v in rows.items():
            print(f"{k:32s} median {med[k]:6.2f} s  runs {', '.join(f'{x:.2f}' for x in v)}")
        print(
            f"parallel / one host: {med['survey, all at once'] / med['one host alone']:.1f}x; "
            f"sequential / parallel: {med['survey, one at a time'] / med['survey, all at once']:.1f}x; "
            f"os.cpu_count={os.cpu_count()}"
        )
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
