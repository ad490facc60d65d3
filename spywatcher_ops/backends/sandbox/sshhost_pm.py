"""The sandbox SSH host's package manager: run as `apt-get`, `needs-restarting`
(argv[1] names which) inside the host's private mount namespace.

Its packages are a JSON file in the host's folder (`packages.json`): the
pending updates (name, from, to, security, reboot) and what was installed.
`apt-get -s upgrade` lists them as apt does; installing one that needs a reboot
writes /run/reboot-required (the host's own /run). Standalone: no imports from
the toolkit, it runs on the "host".
"""

from __future__ import annotations

import json
import os
import sys


def main(folder: str, prog: str, args: list[str]) -> int:
    path = os.path.join(folder, "packages.json")
    flag = "/run/reboot-required"
    with open(path) as f:
        st = json.load(f)

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
        save()

    if prog == "apt-get":
        if "update" in args:
            print("Reading package lists... Done")
            return 0
        if "-s" in args and "upgrade" in args:
            for p in st["pending"]:
                origin = "Debian-Security:12/stable-security" if p["security"] else "Debian:12.9/stable"
                print(f"Inst {p['name']} [{p['from']}] ({p['to']} {origin} [amd64])")
            return 0
        if "install" in args and "--only-upgrade" in args:
            wanted = [a for a in args[args.index("install") + 1 :] if not a.startswith("-")]
            apply([p for p in st["pending"] if p["name"] in wanted])
            return 0
        if "upgrade" in args:
            apply(list(st["pending"]))
            return 0
    if prog == "needs-restarting":
        return 1 if os.path.exists(flag) else 0
    print(f"{prog}: not supported by the sandbox host: {' '.join(args)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
