"""The package manager of an SSH host made by sshhost.py (the sandbox's, or a test's): run
as `apt-get`, `dnf` or `needs-restarting` (argv[2] names which) inside the host's private
mount namespace, with the host's folder as argv[1].

Its packages are a JSON file in the host's folder (`packages.json`): the pending
updates (name, from, to, security, reboot), what was installed, and every call
(`calls`, what the os-patch step ran). `apt-get -s upgrade` and `dnf check-update`
list them as apt and dnf do; installing one that needs a reboot writes
/run/reboot-required (the host's own /run), which needs-restarting reports.
`fail_apply: true` in the file makes installs fail as a held dpkg lock does.
Standalone: no imports from the toolkit, it runs on the "host".
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable


def main(folder: str, prog: str, args: list[str]) -> int:
    path = os.path.join(folder, "packages.json")
    flag = "/run/reboot-required"
    with open(path) as f:
        st = json.load(f)
    st.setdefault("calls", []).append([prog, *args])

    def save() -> None:
        with open(path + ".tmp", "w") as f:
            json.dump(st, f, indent=1)
        os.replace(path + ".tmp", path)

    def apply(pkgs: list[dict]) -> None:
        for p in pkgs:
            st["installed"].append(p)
            if p.get("reboot"):
                with open(flag, "w") as f:
                    f.write("*** System restart required ***\n")
        names = {p["name"] for p in pkgs}
        st["pending"] = [p for p in st["pending"] if p["name"] not in names]

    save()  # the call is recorded whatever happens next
    if st.get("fail_apply") and ("install" in args or ("upgrade" in args and "-s" not in args)):
        print("E: Could not get lock /var/lib/dpkg/lock-frontend", file=sys.stderr)
        return 100
    code = run(prog, args, st["pending"], apply)
    save()
    return code


def run(prog: str, args: list[str], pending: list[dict], apply: Callable[[list[dict]], None]) -> int:
    if prog == "apt-get":
        if "update" in args:
            print("Reading package lists... Done")
            return 0
        if "-s" in args and "upgrade" in args:
            for p in pending:
                origin = "Debian-Security:12/stable-security" if p["security"] else "Debian:12.9/stable"
                print(f"Inst {p['name']} [{p['from']}] ({p['to']} {origin} [amd64])")
            for p in pending:
                print(f"Conf {p['name']} ({p['to']})")
            return 0
        if "install" in args and "--only-upgrade" in args:
            wanted = [a for a in args[args.index("install") + 1 :] if not a.startswith("-")]
            apply([p for p in pending if p["name"] in wanted])
            return 0
        if "upgrade" in args:
            apply(list(pending))
            return 0
    elif prog == "dnf":
        if "check-update" in args:
            for p in pending:
                print(f"{p['name']}.x86_64    {p['to']}    amazonlinux")
            return 100 if pending else 0
        if "updateinfo" in args:
            for i, p in enumerate(pending):
                if p["security"]:
                    print(f"ALAS2023-2026-{i:03d} important/Sec. {p['name']}-{p['to']}.x86_64")
            return 0
        if "upgrade" in args:
            apply([p for p in pending if p["security"] or "--security" not in args])
            return 0
    elif prog == "needs-restarting":
        if os.path.exists("/run/reboot-required"):
            print(
                "Core libraries or services have been updated since boot-up:\n  * kernel\n\nReboot is required"
            )
            return 1
        print(
            "No core libraries or services have been updated since boot-up.\nReboot should not be necessary."
        )
        return 0
    print(f"{prog}: unexpected arguments {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
