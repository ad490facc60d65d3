"""Human output of the app and cluster tasks (JSON is printed by the tasks as is)."""

from __future__ import annotations

from typing import Any


def app_status(con: Any, data: dict[str, Any]) -> None:
    if con.json_mode:
        return
    con.print(f"{data['environment']}: {data['cluster']}, namespace {data['namespace']}")
    rows = []
    for d in data["deployments"]:
        if not d["present"]:
            rows.append([d["deployment"], d["name"], "missing", "", "", "", "", ""])
            continue
        hpa = d["hpa"]
        rows.append(
            [
                d["deployment"],
                d["name"],
                f"{d['ready']}/{d['desired']}",
                d["updated"],
                d["revision"],
                "; ".join(d["images"]),
                "-" if hpa is None else f"{hpa['min']}-{hpa['max']} (now {hpa['current']})",
                ", ".join(f"{p['name']} allows {p['disruptions_allowed']}" for p in d["pdbs"]) or "none",
            ]
        )
    con.table(
        ["deployment", "name", "ready/desired", "updated", "revision", "image", "HPA min-max", "PDB"], rows
    )
    for d in data["deployments"]:
        if not d["present"]:
            continue
        zones = ", ".join(f"{z}: {n}" for z, n in sorted(d["pods_per_zone"].items())) or "no pods"
        nodes = ", ".join(f"{z}: {n}" for z, n in sorted(d["pods_per_node"].items())) or "no pods"
        con.print(f"{d['deployment']} pods per zone: {zones}")
        con.print(f"{d['deployment']} pods per node: {nodes}")
        for w in d["warnings"]:
            con.print(f"  warning {w['at']} {w['object']} {w['reason']}: {w['message']} (x{w['count']})")


def nodes(con: Any, data: dict[str, Any]) -> None:
    if con.json_mode:
        return
    con.print(f"{data['environment']}: {data['cluster']}, control plane {data['control_plane']}")
    con.table(
        ["node", "zone", "type", "kubelet", "AMI", "ready", "cordoned", "pods"],
        [
            [
                n["name"],
                n["zone"],
                n["instance_type"],
                n["kubelet"],
                n["ami"],
                "yes" if n["ready"] else "NO",
                "CORDONED" if n["cordoned"] else "no",
                n["pods"],
            ]
            for n in data["nodes"]
        ],
    )


def mutation(con: Any, data: dict[str, Any], done: str) -> None:
    if data.get("dry_run"):
        return  # the guard already printed the calls it would make
    con.ok(done)
