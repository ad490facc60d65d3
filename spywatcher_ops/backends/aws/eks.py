"""The EKS cluster of an aws environment, reached the EKS way or through a kubeconfig.

EKS way (default, no kubeconfig needed): endpoint and CA from
eks.describe_cluster; a bearer token `k8s-aws-v1.` + base64url(presigned STS
GetCallerIdentity URL that signs the `x-k8s-aws-id: <cluster>` header, 60 s
presign expiry) - exactly what `aws eks get-token` prints. EKS accepts such a
token for 15 minutes; we renew it after TOKEN_RENEW_SECONDS, before any call.

kubeconfig way: `environments.<env>.kube_context` (and optionally
`environments.<env>.kubeconfig`, else $KUBECONFIG or ~/.kube/config) names a
context; whatever auth that context uses (exec plugin, token, certificate) applies.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any

from ...core.errors import BadInput, NotReady
from ..kube import Kube, Obj
from .session import AwsClients

if TYPE_CHECKING:
    from ...core.environment import Environment

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60
# `aws eks get-token` reports a 14 minute validity; renew a minute before that.
TOKEN_RENEW_SECONDS = 13 * 60
DEFAULT_NAMESPACE = "spywatcher"


def eks_token(sts: Any, cluster_name: str) -> str:
    """A bearer token for `cluster_name` from an STS client (what `aws eks get-token` does)."""

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if CLUSTER_ID_HEADER in params:
            context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)

    def add_header(request: Any, **_: Any) -> None:
        if CLUSTER_ID_HEADER in request.context:
            request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", remember, unique_id="spywatcher-eks-id")
    events.register("before-sign.sts.GetCallerIdentity", add_header, unique_id="spywatcher-eks-header")
    url = sts.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_SECONDS,
        HttpMethod="GET",
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class EksCluster:
    """The `cluster` part of an aws environment."""

    def __init__(self, environment: Environment, clients: AwsClients) -> None:
        self.environment = environment
        self.clients = clients
        env = environment.env
        self.project = environment.settings.project
        self.name = env.resource(self.project, "eks")
        self.namespace = str(env.raw.get("kube_namespace") or DEFAULT_NAMESPACE)
        self.kube_context: str | None = env.raw.get("kube_context")
        self.kubeconfig: str | None = env.raw.get("kubeconfig")
        self._client: Any = None
        self._token_at: float | None = None
        self.kube = Kube(self.api_client, self.namespace)

    # -- names -------------------------------------------------------------------
    def deployment_name(self, short: str) -> str:
        """`backend` -> `{project}-{environment}-backend` (or the configured override)."""
        return self.environment.env.resource(self.project, short)

    def describe_access(self) -> str:
        if self.kube_context:
            return f"kubeconfig context {self.kube_context}"
        return f"EKS cluster {self.name} ({self.environment.env.region}) with an STS token"

    # -- ports.Cluster -------------------------------------------------------------
    def deployments(self) -> list[Obj]:
        return self.kube.deployments()

    def connect(self) -> None:
        self.api_client()

    # -- the ApiClient --------------------------------------------------------------
    def api_client(self) -> Any:
        if self._client is None:
            self._client = self._from_kubeconfig() if self.kube_context else self._from_eks()
        return self._client

    def _from_kubeconfig(self) -> Any:
        from kubernetes import config as kconfig
        from kubernetes.config.config_exception import ConfigException

        path = os.path.expanduser(self.kubeconfig) if self.kubeconfig else None
        try:
            return kconfig.new_client_from_config(
                config_file=path, context=self.kube_context, persist_config=False
            )
        except ConfigException as exc:
            raise BadInput(
                f"environments.{self.environment.name}.kube_context {self.kube_context}: {exc}",
                hint="check the context name with `kubectl config get-contexts`",
            ) from None
        except OSError as exc:
            raise BadInput(f"environments.{self.environment.name}.kubeconfig: {exc}") from None

    def _describe(self) -> Obj:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.clients.client("eks").describe_cluster(name=self.name)["cluster"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise NotReady(
                    f"EKS cluster {self.name} not found in {self.environment.env.region}",
                    hint=f"set environments.{self.environment.name}.resources.eks to its name, or kube_context",
                ) from None
            raise NotReady(f"cannot describe EKS cluster {self.name}: {code or exc}") from None
        except BotoCoreError as exc:
            raise NotReady(f"cannot describe EKS cluster {self.name}: {exc}") from None

    def _from_eks(self) -> Any:
        from kubernetes import client as k8s

        cluster = self._describe()
        endpoint = cluster.get("endpoint")
        if not endpoint or cluster.get("status") not in (None, "ACTIVE", "UPDATING"):
            raise NotReady(
                f"EKS cluster {self.name} is {cluster.get('status')}; it has no usable endpoint yet"
            )
        cfg = k8s.Configuration(host=str(endpoint))
        ca = (cluster.get("certificateAuthority") or {}).get("data")
        if ca:
            cfg.ca_cert_data = base64.b64decode(ca).decode()
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
        self._renew(cfg)
        # called by the client before every request: renew the token before it expires
        cfg.refresh_api_key_hook = self._renew  # type: ignore[assignment]  # the client types it as None
        return k8s.ApiClient(cfg)

    def _renew(self, cfg: Any) -> None:
        now = self.environment.clock.monotonic()
        if self._token_at is not None and now - self._token_at < TOKEN_RENEW_SECONDS:
            return
        sts = self.clients.session.client("sts", region_name=self.clients.region)
        cfg.api_key = {"BearerToken": eks_token(sts, self.name)}
        self._token_at = now
