"""EKS versions and updates (the ClusterUpgrades port) through boto3.

The cluster is `{project}-{env}-eks` (or `resources.eks`). The newest AMI
release of a node group's Kubernetes version comes from the public SSM
parameter EKS documents for it
(/aws/service/eks/optimized-ami/<version>/<family>/recommended/release_version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed

if TYPE_CHECKING:
    from ...core.environment import Environment
    from .session import AwsClients

# node group AMI type -> the SSM path family of its recommended release
AMI_FAMILY = {
    "AL2_x86_64": "amazon-linux-2",
    "AL2_x86_64_GPU": "amazon-linux-2-gpu",
    "AL2_ARM_64": "amazon-linux-2-arm64",
    "AL2023_x86_64_STANDARD": "amazon-linux-2023/x86_64/standard",
    "AL2023_ARM_64_STANDARD": "amazon-linux-2023/arm64/standard",
}


class EksUpgrades:
    def __init__(self, environment: Environment, clients: AwsClients) -> None:
        self.environment = environment
        self.clients = clients
        self.cluster_name = environment.env.resource(environment.settings.project, "eks")

    @property
    def eks(self) -> Any:
        return self.clients.client("eks")

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise OperationFailed(
                f"EKS {what} on {self.cluster_name}: {err.get('Code')}: {err.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise OperationFailed(f"EKS {what} on {self.cluster_name}: {exc}") from None

    def cluster(self) -> dict[str, Any]:
        c = self._call("describe_cluster", self.eks.describe_cluster, name=self.cluster_name)["cluster"]
        return {"name": c["name"], "version": c["version"], "status": c.get("status")}

    def versions(self) -> list[str]:
        """The Kubernetes versions EKS offers now (describe_cluster_versions): an upgrade past
        the newest is not possible yet, which is not a failure of the weekly run."""
        out: list[str] = []
        token = None
        while True:
            kwargs: dict[str, str] = {"nextToken": token} if token else {}
            reply = self._call("describe_cluster_versions", self.eks.describe_cluster_versions, **kwargs)
            out += [str(v["clusterVersion"]) for v in reply.get("clusterVersions") or []]
            token = reply.get("nextToken")
            if not token:
                return out

    def nodegroups(self) -> list[dict[str, Any]]:
        names = self._call("list_nodegroups", self.eks.list_nodegroups, clusterName=self.cluster_name)[
            "nodegroups"
        ]
        out = []
        for name in names:
            ng = self._call(
                "describe_nodegroup",
                self.eks.describe_nodegroup,
                clusterName=self.cluster_name,
                nodegroupName=name,
            )["nodegroup"]
            out.append(
                {
                    "name": name,
                    "version": ng.get("version"),
                    "release_version": ng.get("releaseVersion"),
                    "status": ng.get("status"),
                    "ami_type": ng.get("amiType", "AL2_x86_64"),
                    "desired": (ng.get("scalingConfig") or {}).get("desiredSize"),
                }
            )
        return out

    def latest_release(self, version: str, ami_type: str) -> str | None:
        family = AMI_FAMILY.get(ami_type)
        if family is None:
            return None
        name = f"/aws/service/eks/optimized-ami/{version}/{family}/recommended/release_version"
        from botocore.exceptions import ClientError

        try:
            return str(self.clients.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise OperationFailed(f"SSM get_parameter {name}: {exc}") from None

    def insights(self) -> list[dict[str, Any]]:
        listed = self._call(
            "list_insights",
            self.eks.list_insights,
            clusterName=self.cluster_name,
            filter={"categories": ["UPGRADE_READINESS"]},
        )["insights"]
        out = []
        for i in listed:
            detail = self._call(
                "describe_insight", self.eks.describe_insight, clusterName=self.cluster_name, id=i["id"]
            )["insight"]
            summary = detail.get("categorySpecificSummary") or {}
            out.append(
                {
                    "id": i["id"],
                    "name": i.get("name"),
                    "kubernetes_version": i.get("kubernetesVersion"),
                    "status": (i.get("insightStatus") or {}).get("status"),
                    "reason": (i.get("insightStatus") or {}).get("reason"),
                    "deprecations": [
                        {
                            "usage": d.get("usage"),
                            "replaced_with": d.get("replacedWith"),
                            "stop_serving_version": d.get("stopServingVersion"),
                            "clients": [c.get("userAgent") for c in d.get("clientStats") or []],
                        }
                        for d in summary.get("deprecationDetails") or []
                    ],
                }
            )
        return out

    def addons(self) -> list[dict[str, Any]]:
        names = self._call("list_addons", self.eks.list_addons, clusterName=self.cluster_name)["addons"]
        out = []
        for name in names:
            a = self._call(
                "describe_addon", self.eks.describe_addon, clusterName=self.cluster_name, addonName=name
            )["addon"]
            out.append({"name": name, "version": a.get("addonVersion"), "status": a.get("status")})
        return out

    def addon_versions(self, name: str, kubernetes_version: str) -> list[dict[str, Any]]:
        res = self._call(
            "describe_addon_versions",
            self.eks.describe_addon_versions,
            addonName=name,
            kubernetesVersion=kubernetes_version,
        )
        out = []
        for addon in res.get("addons") or []:
            for v in addon.get("addonVersions") or []:
                for comp in v.get("compatibilities") or []:
                    if comp.get("clusterVersion") == kubernetes_version:
                        out.append(
                            {"version": v["addonVersion"], "default": bool(comp.get("defaultVersion"))}
                        )
        return out

    def update_cluster_version(self, version: str) -> str:
        res = self._call(
            "update_cluster_version", self.eks.update_cluster_version, name=self.cluster_name, version=version
        )
        return str(res["update"]["id"])

    def update_addon(self, name: str, version: str) -> str:
        res = self._call(
            "update_addon",
            self.eks.update_addon,
            clusterName=self.cluster_name,
            addonName=name,
            addonVersion=version,
            resolveConflicts="PRESERVE",
        )
        return str(res["update"]["id"])

    def update_nodegroup(self, name: str, version: str | None = None) -> str:
        kwargs: dict[str, Any] = {"clusterName": self.cluster_name, "nodegroupName": name}
        if version:
            kwargs["version"] = version  # without it: the newest AMI release of its current version
        res = self._call("update_nodegroup_version", self.eks.update_nodegroup_version, **kwargs)
        return str(res["update"]["id"])

    def describe_update(
        self, update_id: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"name": self.cluster_name, "updateId": update_id}
        if nodegroup:
            kwargs["nodegroupName"] = nodegroup
        if addon:
            kwargs["addonName"] = addon
        u = self._call("describe_update", self.eks.describe_update, **kwargs)["update"]
        return {
            "id": u["id"],
            "status": u["status"],
            "type": u.get("type"),
            "errors": [f"{e.get('errorCode')}: {e.get('errorMessage')}" for e in u.get("errors") or []],
        }
