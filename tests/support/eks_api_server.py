"""A loopback fake of the EKS REST API (plain REST-JSON), plus the one SSM call the
node-group step makes, for boto3 clients pointed at it (AWS_ENDPOINT_URL_EKS / _SSM).

It stands in for what moto 5.2 lacks: update_nodegroup_version,
update_cluster_version, describe_update, list/describe_insights, update_addon,
describe_addon_versions, describe_cluster_versions (moto's EKS has clusters and node groups, no updates).
It keeps each update's state and advances it one step per describe_update poll
(`polls_to_finish`), so the toolkit's waits and their timeouts run for real;
`on_advance(update, step)` lets a test replace nodes in the in-test Kubernetes
API server as EKS would. Faults: `fail_updates` (the update ends Failed with an
error), `stuck_updates` (never finishes).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from support.loopback_http import QuietHandler, serve, stop

Obj = dict[str, Any]

# Add-on versions per Kubernetes version: the first one listed is the default (as EKS marks it).
ADDON_VERSIONS: dict[str, dict[str, list[str]]] = {
    "vpc-cni": {
        "1.28": ["v1.18.3-eksbuild.1", "v1.16.0-eksbuild.1"],
        "1.29": ["v1.18.3-eksbuild.1"],
        "1.30": ["v1.18.5-eksbuild.1"],
    },
    "coredns": {
        "1.28": ["v1.10.1-eksbuild.13", "v1.10.1-eksbuild.4"],
        "1.29": ["v1.11.1-eksbuild.9"],
        "1.30": ["v1.11.3-eksbuild.1"],
    },
    "kube-proxy": {
        "1.28": ["v1.28.12-eksbuild.5", "v1.28.1-eksbuild.1"],
        "1.29": ["v1.29.7-eksbuild.5"],
        "1.30": ["v1.30.3-eksbuild.5"],
    },
}
RELEASES = {
    "1.27": "1.27.16-20241121",
    "1.28": "1.28.15-20241121",
    "1.29": "1.29.10-20241121",
    "1.30": "1.30.6-20241121",
}


class FakeEks:
    def __init__(self, cluster: str, *, version: str = "1.28", polls_to_finish: int = 3) -> None:
        self.lock = threading.RLock()
        self.cluster: Obj = {
            "name": cluster,
            "version": version,
            "status": "ACTIVE",
            "arn": f"arn:aws:eks:us-east-1:123456789012:cluster/{cluster}",
        }
        self.nodegroups: dict[str, Obj] = {}
        self.addons: dict[str, Obj] = {}
        self.insights: list[Obj] = []
        self.updates: dict[str, Obj] = {}
        self.polls_to_finish = polls_to_finish
        self.releases = dict(RELEASES)
        self.addon_versions = {k: dict(v) for k, v in ADDON_VERSIONS.items()}
        self.offered = ["1.28", "1.29", "1.30"]  # what describe_cluster_versions lists
        self.fail_updates: set[str] = set()  # update types (VersionUpdate, AddonUpdate) that end Failed
        self.stuck_updates: set[str] = set()
        self.on_advance: Callable[[Obj, int], None] | None = None
        self.calls: list[tuple[str, str]] = []
        self._server: Any = None
        self.url = ""

    # seeding ------------------------------------------------------------------
    def add_nodegroup(
        self, name: str, *, version: str | None = None, release: str | None = None, size: int = 3
    ) -> None:
        v = version or self.cluster["version"]
        self.nodegroups[name] = {
            "nodegroupName": name,
            "clusterName": self.cluster["name"],
            "version": v,
            "releaseVersion": release or self.releases[v].replace("20241121", "20240910"),
            "status": "ACTIVE",
            "amiType": "AL2_x86_64",
            "scalingConfig": {"minSize": 1, "maxSize": size + 1, "desiredSize": size},
        }

    def add_addon(self, name: str, version: str) -> None:
        self.addons[name] = {
            "addonName": name,
            "clusterName": self.cluster["name"],
            "addonVersion": version,
            "status": "ACTIVE",
        }

    def add_insight(
        self, name: str, status: str, *, reason: str = "", deprecations: list[Obj] | None = None
    ) -> None:
        self.insights.append(
            {
                "id": str(uuid.uuid4()),
                "name": name,
                "category": "UPGRADE_READINESS",
                "kubernetesVersion": self._next(self.cluster["version"]),
                "lastRefreshTime": time.time(),
                "lastTransitionTime": time.time(),
                "description": name,
                "insightStatus": {"status": status, "reason": reason},
                "deprecationDetails": deprecations or [],
            }
        )

    @staticmethod
    def _next(version: str) -> str:
        major, minor = version.split(".")
        return f"{major}.{int(minor) + 1}"

    # updates -------------------------------------------------------------------
    def _new_update(
        self, kind: str, params: list[Obj], apply: Callable[[], None], target: tuple[str, str]
    ) -> Obj:
        uid = str(uuid.uuid4())
        self.updates[uid] = {
            "id": uid,
            "status": "InProgress",
            "type": kind,
            "params": params,
            "createdAt": time.time(),
            "errors": [],
            "_polls": 0,
            "_apply": apply,
            "_target": target,
        }
        return self._public(self.updates[uid])

    @staticmethod
    def _public(update: Obj) -> Obj:
        return {k: v for k, v in update.items() if not k.startswith("_")}

    def _advance(self, update: Obj) -> None:
        if update["status"] != "InProgress":
            return
        update["_polls"] += 1
        if self.on_advance is not None:
            self.on_advance(self._public(update), update["_polls"])
        if update["type"] in self.stuck_updates:
            return
        if update["_polls"] >= self.polls_to_finish:
            if update["type"] in self.fail_updates:
                update["status"] = "Failed"
                update["errors"] = [
                    {
                        "errorCode": "PodEvictionFailure",
                        "errorMessage": "Reached max retries while trying to evict pods from nodes",
                        "resourceIds": [update["_target"][1]],
                    }
                ]
                self._set_status(update, "ACTIVE")
                return
            update["_apply"]()
            update["status"] = "Successful"
            self._set_status(update, "ACTIVE")

    def _set_status(self, update: Obj, status: str) -> None:
        kind, name = update["_target"]
        obj = {
            "cluster": self.cluster,
            "nodegroup": self.nodegroups.get(name),
            "addon": self.addons.get(name),
        }[kind]
        if obj is not None:
            obj["status"] = status

    # HTTP ----------------------------------------------------------------------
    def serve(self) -> str:
        fake = self

        class Handler(QuietHandler):
            def _go(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    code, body = fake.route(method, self.path, raw, self.headers.get("X-Amz-Target"))
                except KeyError as exc:
                    code, body = 404, {"message": f"No such resource: {exc}"}
                    self.send_response(code)
                    self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
                    data = json.dumps(body).encode()
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.reply(code, json.dumps(body, default=str).encode())

            def do_GET(self) -> None:
                self._go("GET")

            def do_POST(self) -> None:
                self._go("POST")

        self._server, self.url = serve(Handler, "fake-eks")
        return self.url

    def close(self) -> None:
        stop(self._server)

    def route(self, method: str, path: str, raw: bytes, target: str | None) -> tuple[int, Any]:
        url = urlparse(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        body = json.loads(raw) if raw else {}
        with self.lock:
            self.calls.append((method, url.path))
            if target == "AmazonSSM.GetParameter":
                return self._ssm_parameter(body["Name"])
            if parts[:2] == ["addons", "supported-versions"]:
                return self._addon_versions(query)
            if parts == ["cluster-versions"]:
                return 200, {
                    "clusterVersions": [
                        {"clusterVersion": v, "clusterType": "eks", "versionStatus": "STANDARD_SUPPORT"}
                        for v in self.offered
                    ]
                }
            if parts[0] != "clusters" or len(parts) < 2:
                raise KeyError(url.path)
            if parts[1] != self.cluster["name"]:
                raise KeyError(f"cluster {parts[1]}")
            rest = parts[2:]
            if not rest and method == "GET":
                return 200, {"cluster": dict(self.cluster)}
            if rest == ["node-groups"]:
                return 200, {"nodegroups": sorted(self.nodegroups)}
            if len(rest) == 2 and rest[0] == "node-groups":
                return 200, {"nodegroup": dict(self.nodegroups[rest[1]])}
            if len(rest) == 3 and rest[0] == "node-groups" and rest[2] == "update-version":
                return self._update_nodegroup(rest[1], body)
            if rest == ["updates"] and method == "POST":
                return self._update_cluster(body)
            if len(rest) == 2 and rest[0] == "updates":
                update = self.updates[rest[1]]
                self._advance(update)
                return 200, {"update": self._public(update)}
            if rest == ["insights"]:
                return 200, {
                    "insights": [
                        {k: v for k, v in i.items() if k != "deprecationDetails"} for i in self.insights
                    ]
                }
            if len(rest) == 2 and rest[0] == "insights":
                i = next(x for x in self.insights if x["id"] == rest[1])
                return 200, {
                    "insight": {
                        **{k: v for k, v in i.items() if k != "deprecationDetails"},
                        "categorySpecificSummary": {"deprecationDetails": i["deprecationDetails"]},
                    }
                }
            if rest == ["addons"]:
                return 200, {"addons": sorted(self.addons)}
            if len(rest) == 2 and rest[0] == "addons":
                return 200, {"addon": dict(self.addons[rest[1]])}
            if len(rest) == 3 and rest[0] == "addons" and rest[2] == "update":
                return self._update_addon(rest[1], body)
        raise KeyError(url.path)

    def _ssm_parameter(self, name: str) -> tuple[int, Any]:
        # /aws/service/eks/optimized-ami/<version>/amazon-linux-2/recommended/release_version
        version = name.split("/")[5]
        if version not in self.releases:
            return 400, {"__type": "ParameterNotFound", "message": name}
        return 200, {
            "Parameter": {"Name": name, "Type": "String", "Value": self.releases[version], "Version": 1}
        }

    def _addon_versions(self, query: dict[str, str]) -> tuple[int, Any]:
        name, kv = query.get("addonName", ""), query.get("kubernetesVersion", "")
        versions = self.addon_versions.get(name, {}).get(kv, [])
        return 200, {
            "addons": [
                {
                    "addonName": name,
                    "type": "networking",
                    "addonVersions": [
                        {
                            "addonVersion": v,
                            "architecture": ["amd64"],
                            "compatibilities": [
                                {"clusterVersion": kv, "platformVersions": ["*"], "defaultVersion": i == 0}
                            ],
                        }
                        for i, v in enumerate(versions)
                    ],
                }
            ]
            if versions
            else []
        }

    def _update_nodegroup(self, name: str, body: Obj) -> tuple[int, Any]:
        ng = self.nodegroups[name]
        version = body.get("version") or ng["version"]
        release = body.get("releaseVersion") or self.releases[version]

        def apply() -> None:
            ng["version"], ng["releaseVersion"] = version, release

        ng["status"] = "UPDATING"
        update = self._new_update(
            "VersionUpdate",
            [{"type": "Version", "value": version}, {"type": "ReleaseVersion", "value": release}],
            apply,
            ("nodegroup", name),
        )
        return 200, {"update": update}

    def _update_cluster(self, body: Obj) -> tuple[int, Any]:
        version = body["version"]
        if version != self._next(self.cluster["version"]):
            return 400, {
                "message": f"Unsupported Kubernetes minor version update from {self.cluster['version']} "
                f"to {version}"
            }

        def apply() -> None:
            self.cluster["version"] = version

        self.cluster["status"] = "UPDATING"
        return 200, {
            "update": self._new_update(
                "VersionUpdate",
                [{"type": "Version", "value": version}],
                apply,
                ("cluster", self.cluster["name"]),
            )
        }

    def _update_addon(self, name: str, body: Obj) -> tuple[int, Any]:
        addon = self.addons[name]
        version = body["addonVersion"]

        def apply() -> None:
            addon["addonVersion"] = version

        addon["status"] = "UPDATING"
        return 200, {
            "update": self._new_update(
                "AddonUpdate", [{"type": "AddonVersion", "value": version}], apply, ("addon", name)
            )
        }
