"""The four parts of every environment, each behind a small interface.

Recovery, drills, maintenance and runbooks are written against these
Protocols; `core.environment` picks the implementation from configuration.
Every method that mutates has a `plan_*` twin returning the exact calls, so
--dry-run can show them without making any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .errors import OperationFailed
from .plan import Plan, Step

# The tag value (key ManagedBy) that marks what this toolkit created; only
# such snapshots and instances are ever deleted by it.
MANAGED_BY = "spywatcher-ops"

# Progress callbacks receive a short status line ("creating, 42%").
Progress = Callable[[str], None]


def no_progress(_status: str) -> None:
    return None


@dataclass(frozen=True)
class Snapshot:
    id: str
    source: str  # instance the snapshot was taken of
    kind: str  # "manual" | "automated"
    status: str  # "available", "creating", ...
    created: datetime | None
    size_bytes: int | None
    ours: bool  # made by this toolkit (ManagedBy=spywatcher-ops tag / our manifest)
    tags: dict[str, str] = field(default_factory=dict)
    region: str | None = None


@dataclass(frozen=True)
class RestoreWindow:
    earliest: datetime
    latest: datetime
    retention_days: int
    gap: str | None = None  # a missing WAL segment that bounds `latest` (sandbox archive), if any


@dataclass(frozen=True)
class Instance:
    id: str
    status: str
    host: str
    port: int
    engine_version: str = ""
    multi_az: bool = False
    created_by_us: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    """Everything psycopg needs. `password` never goes to the journal or output."""

    host: str  # may be a comma-separated multi-host list (libpq)
    port: str  # likewise
    dbname: str
    user: str
    password: str | None = field(default=None, repr=False)  # not in repr(): a logged object shows no secret
    sslmode: str = "prefer"
    target_session_attrs: str | None = None
    sslrootcert: str | None = None  # CA bundle that verify-ca / verify-full check the server against

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "sslmode": self.sslmode,
        }
        if self.password is not None:
            out["password"] = self.password
        if self.target_session_attrs:
            out["target_session_attrs"] = self.target_session_attrs
        if self.sslrootcert:
            out["sslrootcert"] = self.sslrootcert
        return out

    def redacted(self) -> str:
        """The address without the password, as a libpq URI: each host with its own port
        (`h1:p1,h2:p2`), the one form every task prints."""
        hosts, ports = self.host.split(","), self.port.split(",")
        if len(ports) == 1:
            ports = ports * len(hosts)  # libpq: one port serves every host
        elif len(hosts) == 1:
            hosts = hosts * len(ports)
        pairs = ",".join(f"{h}:{p}" for h, p in zip(hosts, ports, strict=False))
        query = f"?target_session_attrs={self.target_session_attrs}" if self.target_session_attrs else ""
        return f"postgresql://{self.user}@{pairs}/{self.dbname}{query}"


@dataclass(frozen=True)
class ProviderEvent:
    """An event reported by the provider (RDS-EVENT-0049, +switch-master...)."""

    at: datetime
    source: str
    message: str
    code: str | None = None


@dataclass(frozen=True)
class FailoverResult:
    old_primary: str
    new_primary: str
    started: datetime
    finished: datetime
    events: list[ProviderEvent] = field(default_factory=list)
    lost_commits: int | None = None  # transactions committed on the old primary and lost; None: not known
    warnings: list[str] = field(default_factory=list)  # what the failover could not confirm


@dataclass(frozen=True)
class SwapResult:
    instance: str  # the name that now serves
    replaced_as: str  # where the old instance went
    reverse_command: str


class Database(Protocol):
    """RDS on AWS; a local PostgreSQL primary/standby pair on the sandbox."""

    def instance_id(self) -> str: ...
    def describe(self, instance_id: str | None = None) -> Instance: ...
    def instances(self) -> list[Instance]: ...
    def connection(self, instance_id: str | None = None) -> ConnectionInfo: ...

    def list_snapshots(self) -> list[Snapshot]: ...
    # fresh=False: read-only, as last recorded (status); the sandbox otherwise writes a heartbeat first
    def restorable_window(self, *, fresh: bool = True) -> RestoreWindow: ...
    # instance_id: another instance's events (a restored one); default: the environment's
    def events(self, since: datetime, instance_id: str | None = None) -> list[ProviderEvent]: ...

    def plan_snapshot(self, snapshot_id: str, tags: dict[str, str], copy_to_region: str | None) -> Plan: ...
    def create_snapshot(self, plan: Plan, *, wait: bool, progress: Progress) -> Snapshot: ...

    def plan_delete_snapshots(self, snapshot_ids: list[str]) -> Plan: ...
    def delete_snapshots(self, plan: Plan) -> None: ...

    def plan_restore(self, new_id: str, *, to_time: datetime | None, snapshot_id: str | None) -> Plan: ...
    def restore(self, plan: Plan, *, progress: Progress, keep_failed: bool = False) -> Instance: ...

    def plan_delete_instance(self, instance_id: str, *, final_snapshot: str | None = None) -> Plan: ...
    def delete_instance(self, plan: Plan, *, progress: Progress) -> None: ...

    def plan_swap(self, new_id: str, replaced_as: str) -> Plan: ...
    def swap(self, plan: Plan, *, progress: Progress) -> SwapResult: ...

    def plan_failover(self) -> Plan: ...
    def failover(self, plan: Plan, *, progress: Progress) -> FailoverResult: ...


@dataclass(frozen=True)
class CacheNode:
    id: str
    role: str  # "primary" | "replica" | "sentinel"
    host: str
    port: int
    alive: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheEndpoint:
    """How a client reaches the cache: sentinels + master name, or a primary endpoint."""

    primary_host: str
    primary_port: int
    sentinels: list[tuple[str, int]] = field(default_factory=list)
    master_name: str | None = None
    password: str | None = field(
        default=None, repr=False
    )  # the data nodes' (AUTH); never journalled or printed
    tls: bool = False
    sentinel_password: str | None = field(default=None, repr=False)  # the sentinels' own (sandbox)


class Cache(Protocol):
    """ElastiCache on AWS; Redis primary + replica + sentinels on the sandbox."""

    def status(self) -> list[CacheNode]: ...
    def endpoint(self) -> CacheEndpoint: ...
    def events(self, since: datetime) -> list[ProviderEvent]: ...
    # node_group: the shard to fail over; None = the only one (error if several).
    def plan_failover(self, node_group: str | None = None) -> Plan: ...
    def failover(self, plan: Plan, *, progress: Progress) -> FailoverResult: ...

    # The provider's limit on test failovers and the calls counted against it now
    # (ElastiCache: TestFailover, 24 h rolling). None / []: no such limit (the sandbox).
    @property
    def quota(self) -> int | None: ...
    def test_failovers_in_window(self) -> list[ProviderEvent]: ...


# A Kubernetes API object, as the API's JSON. cluster/objects.py reads them.
KubeObj = dict[str, Any]

# The node annotation a drill leaves on the nodes it cordons (step_cordon(by=...)):
# its cleanup uncordons only nodes that still carry its mark.
CORDONED_BY = "spywatcher-ops/cordoned-by"


class KubeError(OperationFailed):
    """The Kubernetes API answered with an error status (404, 409, 429 ...)."""

    def __init__(self, status: int, reason: str, message: str, body: KubeObj | None = None) -> None:
        super().__init__(f"kubernetes API {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.api_message = message
        self.body = body or {}

    @property
    def causes(self) -> list[str]:
        return [str(c.get("message", "")) for c in (self.body.get("details") or {}).get("causes") or []]


class KubeApi(Protocol):
    """The cluster's operations: reads return the API's JSON, every write is a plan
    step naming the exact client call, made by `execute` (so --dry-run shows it).
    Errors: KubeError (an API status), NotReady (the API cannot be reached)."""

    namespace: str

    def execute(self, step: Step) -> object: ...
    def version(self) -> KubeObj: ...
    def deployments(self) -> list[KubeObj]: ...
    def deployment(self, name: str) -> KubeObj: ...
    def replicasets(self, selector: str | None = None) -> list[KubeObj]: ...
    def pods(
        self, selector: str | None = None, *, node: str | None = None, all_namespaces: bool = False
    ) -> list[KubeObj]: ...
    def nodes(self) -> list[KubeObj]: ...
    def node(self, name: str) -> KubeObj: ...
    def pdbs(self, *, all_namespaces: bool = False) -> list[KubeObj]: ...
    def hpas(self) -> list[KubeObj]: ...
    def events(self, *, warnings_only: bool = True) -> list[KubeObj]: ...
    def pod_log(
        self, pod: str, *, since_seconds: int | None, tail: int | None = None, container: str | None = None
    ) -> str: ...
    def step_scale(self, name: str, replicas: int) -> Step: ...
    def step_restart(self, name: str, at: datetime) -> Step: ...
    def step_rollback(self, deployment: KubeObj, replicaset: KubeObj) -> Step: ...
    def step_cordon(self, node: str, *, cordon: bool = True, by: str | None = None) -> Step: ...
    def step_evict(self, pod: KubeObj) -> Step: ...
    def step_delete_pod(self, pod: KubeObj) -> Step: ...


class Cluster(Protocol):
    """EKS through the kubernetes client. The sandbox has none."""

    namespace: str  # where the application's deployments live

    @property
    def kube(self) -> KubeApi: ...  # the typed operations (backends/kube.py makes them over the client)

    def deployments(self) -> list[KubeObj]: ...
    def deployment_name(self, short: str) -> str: ...  # "backend" -> "{project}-{env}-backend"
    def describe_access(self) -> str: ...  # how the cluster is reached, for output
    def connect(self) -> None: ...  # build the client (and its token) now, before threads share it


# --- fault injection (drills) -------------------------------------------------


@dataclass(frozen=True)
class Processes:
    """Processes a fault acts on, each pid with its start time: a signal sent later
    (a thaw, or the next run's cleanup reading the journal) reaches only those same
    processes, never a later one that got a reused pid."""

    what: str  # "primary and its children", "standby walreceiver"
    pids: tuple[tuple[int, int | None], ...]
    folder: str | None = None  # the server's working folder: where workers it forks later run

    @property
    def pid_list(self) -> list[int]:
        return [pid for pid, _ in self.pids]

    def record(self) -> list[list[int | None]]:
        """The journal's form (an undo record's `pids`)."""
        return [[pid, started] for pid, started in self.pids]

    @classmethod
    def from_record(cls, what: str, pids: list[list[int | None]]) -> Processes:
        return cls(what, tuple((int(p[0] or 0), p[1]) for p in pids))


class FaultInjector(Protocol):
    """Faults a drill injects that no provider API offers: freezing, stopping and
    killing the database's own processes. The sandbox implements it on its local
    servers; an aws environment has none (Environment.faults says so), its faults
    are the provider's own (RDS reboot with failover, ElastiCache TestFailover),
    reached through Database.failover and Cache.failover."""

    def primary(self) -> Processes: ...  # the primary's server and its children, as they are now
    def wal_receiver(self) -> Processes: ...  # the standby's walreceiver; NotReady when it is not streaming
    def freeze(self, processes: Processes) -> None: ...  # SIGSTOP: a hung server, or WAL receipt stopped
    def thaw(
        self, processes: Processes
    ) -> tuple[list[int], list[int]]: ...  # SIGCONT the same ones: (resumed, gone)
    def end_frozen(
        self, processes: Processes
    ) -> None: ...  # SIGTERM, then SIGCONT: exits before reading its socket
    # SIGKILL them at once (the machine is lost), then what the server forked since; waits until gone
    def kill(self, processes: Processes) -> list[int]: ...
    def replication_caught_up(self) -> bool: ...  # the standby has received everything the primary wrote
    def synchronous_standbys(
        self,
    ) -> str | None: ...  # the primary's synchronous_standby_names; None: unreadable


# --- infrastructure (Terraform) ---------------------------------------------


@dataclass(frozen=True)
class StateVersion:
    """One stored version of the Terraform state (an S3 object version, or a local backup)."""

    id: str
    modified: datetime | None
    size_bytes: int
    serial: int | None
    lineage: str | None
    latest: bool


@dataclass(frozen=True)
class ApplyResult:
    """What `terraform apply` did: resources it finished, and where it failed."""

    code: int
    output: str
    applied: list[str] = field(default_factory=list)  # "terraform_data.web: created"
    failed: list[str] = field(default_factory=list)  # addresses named in its errors
    errors: list[str] = field(default_factory=list)  # the "Error: ..." summaries


class Infrastructure(Protocol):
    """Terraform (real CLI, state in S3 with versions, or a local state on the sandbox).

    Plans go to files; only a saved plan is ever applied. State versions are
    read-only except `push_state`, which goes through Terraform's own lock.
    """

    def describe(self) -> dict[str, Any]: ...  # terraform version, dir, workspace, backend
    def workspace(self) -> str: ...
    def stateful(self) -> list[str]: ...  # resource types or TYPE.NAME addresses guarded from destroy
    def plans_dir(self) -> Path: ...
    def prepare(self) -> None: ...  # init with the backend config (when it changed), select the workspace
    # plan to a file: {"changes": bool, "resource_changes": [...], "resource_drift": [...]} (show -json's shape)
    # `meanwhile`: the caller's own work, run while terraform plans
    def plan(
        self, out: Path, *, destroy: bool = False, meanwhile: Callable[[], object] | None = None
    ) -> dict[str, Any]: ...
    def show(self, plan: Path) -> dict[str, Any]: ...  # `terraform show -json PLAN`
    def apply(self, plan: Path, *, on_line: Progress) -> ApplyResult: ...
    def state(self) -> dict[str, Any] | None: ...  # the current state document; None: no state yet
    def versioning(self) -> str: ...  # "Enabled", "Suspended", "off"; "local" without a bucket
    def state_versions(self) -> list[StateVersion]: ...
    def state_version(self, version_id: str) -> dict[str, Any]: ...
    def push_state(self, state: dict[str, Any]) -> None: ...
    def backup_state(self, label: str) -> str | None: ...  # the version id to roll back to (S3: current)


# --- data-tier maintenance (the Sunday job, issue 13) --------------------------


@dataclass(frozen=True)
class PendingChange:
    """A change the provider holds until a restart or a maintenance window."""

    part: str  # "database" | "cache"
    name: str  # the parameter, or the provider's action ("system-update", "db-upgrade")
    current: str | None
    pending: str | None
    apply: str  # "pending-reboot" | "next-maintenance" | "immediate"
    description: str = ""


@dataclass(frozen=True)
class Certificate:
    id: str  # ACM ARN, or the sandbox certificate's serial number
    subject: str
    not_after: datetime
    source: str  # "sandbox-ca" | "acm-issued" | "imported"
    served_at: str = ""  # host:port where it is served
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MaintenanceResult:
    events: list[ProviderEvent] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class DataMaintenance(Protocol):
    """Engine-level maintenance of the database and cache: what the Sunday job's
    data-tier steps ask the provider to do. Mutations come with a plan_* twin."""

    def housekeeping_connection(self) -> ConnectionInfo: ...  # a role that may VACUUM and REINDEX
    def pending_changes(self) -> list[PendingChange]: ...
    def queue_change(self, name: str, value: str) -> dict[str, Any]: ...  # sandbox: its parameter group
    def plan_database_maintenance(self) -> Plan: ...
    def database_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult: ...
    def plan_cache_maintenance(self) -> Plan: ...
    def cache_maintenance(self, plan: Plan, *, progress: Progress) -> MaintenanceResult: ...
    def certificates(self) -> list[Certificate]: ...
    def plan_renew_certificate(self, valid_days: int) -> Plan: ...
    def renew_certificate(self, plan: Plan, *, progress: Progress) -> MaintenanceResult: ...
    # after a run was killed mid-step: bring the data tier back to a known state, say what was done
    def repair(self, *, progress: Progress) -> str: ...
    # the standby fit to take over: answering, in recovery, replaying the primary's newest WAL within
    # max_lag_s; returns what was found, NotReady otherwise (a frozen standby still has its pid)
    def standby_ready(self, max_lag_s: float) -> str: ...


# --- SSH hosts (the Sunday job's OS patches; backends/ssh.py) --------------------


@dataclass(frozen=True)
class HostSpec:
    """A machine reached over SSH, from the environment's `ssh.hosts` (or the sandbox's own host)."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None  # None: the SSH agent
    jump_host: str | None = None  # the name of another host, used as a ProxyJump
    node_name: str | None = None  # the Kubernetes node it is, if it is one

    @property
    def is_node(self) -> bool:
        return self.node_name is not None


@dataclass(frozen=True)
class RemoteResult:
    command: str
    exit_code: int
    stdout: str
    stderr: str


class SshError(OperationFailed):
    """A host could not be used: `reason` is unreachable | host-key | auth | timeout."""

    def __init__(self, host: str, reason: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"host {host}: {message}", hint=hint)
        self.host = host
        self.reason = reason


class RemoteShell(Protocol):
    """An open SSH session to one host. `run` never raises for a non-zero exit code."""

    spec: HostSpec

    def run(self, command: str, *, timeout: float, sudo: bool = False) -> RemoteResult: ...
    def close(self) -> None: ...


class Hosts(Protocol):
    """The environment's SSH hosts; connections verify the host key against known_hosts."""

    known_hosts: Path
    connect_timeout: float  # seconds, the environment's ssh.connect_timeout_seconds

    def list(self) -> list[HostSpec]: ...
    def connect(self, name: str, *, timeout: float | None = None) -> RemoteShell: ...  # raises SshError


# --- EKS versions (the Sunday job's Kubernetes upgrades; backends/aws/eks_updates.py) ---


class ClusterUpgrades(Protocol):
    """EKS control plane, managed add-ons and managed node groups: versions and updates.
    Reads return plain dicts; `update_*` start an asynchronous EKS update and return its id,
    `describe_update` says how it goes (InProgress | Successful | Failed | Cancelled)."""

    cluster_name: str

    def cluster(self) -> dict[str, Any]: ...  # {name, version, status}
    def versions(self) -> list[str]: ...  # the Kubernetes versions EKS offers now; [] when it does not say
    def nodegroups(self) -> list[dict[str, Any]]: ...  # {name, version, release_version, status, ami_type}
    def latest_release(self, version: str, ami_type: str) -> str | None: ...  # newest AMI release for it
    def insights(self) -> list[dict[str, Any]]: ...  # {id, name, status, reason, deprecations: [...]}
    def addons(self) -> list[dict[str, Any]]: ...  # {name, version, status}
    def addon_versions(
        self, name: str, kubernetes_version: str
    ) -> list[dict[str, Any]]: ...  # {version, default}
    def update_cluster_version(self, version: str) -> str: ...
    def update_addon(self, name: str, version: str) -> str: ...
    def update_nodegroup(self, name: str, version: str | None = None) -> str: ...
    def describe_update(
        self, update_id: str, *, nodegroup: str | None = None, addon: str | None = None
    ) -> dict[str, Any]: ...


# --- monitoring, notifications, permissions (aws: CloudWatch, SNS, IAM) ---------


class Monitoring(Protocol):
    """CloudWatch on aws: alarms, metric datapoints, metric publishing. The sandbox evaluates its
    alarms from its servers when asked (no history, no metrics: backends/sandbox/monitoring.py).
    Provider errors come as OperationFailed (the call, and the provider's reason)."""

    # every alarm in `states`, all pages: CloudWatch's own dicts, with "_type" metric | composite
    def alarms(self, states: list[str]) -> list[dict[str, Any]]: ...
    def firing(self, names: list[str]) -> list[str]: ...  # of these alarms, the ones in state ALARM
    # the newest datapoint of the last `minutes`; None when the metric reported nothing
    def latest(
        self,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        now: datetime,
        *,
        stat: str = "Average",
        minutes: int = 15,
    ) -> float | None: ...
    # put_metric_data, in batches the service takes; datums in CloudWatch's shape
    def put_metrics(self, namespace: str, data: list[dict[str, Any]]) -> None: ...


class Notifications(Protocol):
    """SNS on aws: a message to a topic. Returns the provider's message id."""

    def publish(self, topic: str, subject: str, message: str) -> str | None: ...


@dataclass(frozen=True)
class Denial:
    """One action the caller may not take (on `resource`, "*" when the simulation named none)."""

    action: str
    resource: str
    decision: str  # "implicitDeny" | "explicitDeny"


class Permissions(Protocol):
    """IAM policy simulation of whoever runs the toolkit (aws)."""

    def caller(self) -> str: ...  # the caller's ARN (sts get-caller-identity)
    def principal(self) -> str: ...  # what IAM simulates for it (an assumed role's role ARN)
    # every action against each of `resources` (None: "*"); what is not allowed
    def simulate(self, actions: list[str], resources: list[str] | None = None) -> list[Denial]: ...
    # what `terraform init/plan/apply` needs on the environment's S3 state backend (its workspace's
    # state key, lock file, DynamoDB lock table): (actions, resource ARNs) groups; [] for a local state
    def state_backend_access(self) -> list[tuple[list[str], list[str]]]: ...


# --- credentials rotation and resize --------------------------------------------


@dataclass
class Rotation:
    """A password rotation under way, as the domain sequence (recovery/credentials.py) drives it.
    Passwords stay out of repr(), the journal and the output."""

    secret: str  # the Secrets Manager secret, or the sandbox's secrets file
    user: str
    method: str  # "secrets-manager-rotation" | "modify_db_instance" | "alter-role"
    old_password: str = field(repr=False)
    current: str  # how the journal and errors name the current password ("AWSCURRENT (version v1)")
    stage_step: str = "stage"  # the journal's name of the staging step ("put_secret_value")
    old_version: str | None = None
    new_version: str | None = None  # the staged version's id, once known
    if_stuck: str = ""  # what to do by hand when the undo fails too
    details: dict[str, Any] = field(default_factory=dict)  # the backend's own (instance id ...)


class Credentials(Protocol):
    """Where the database password lives and how the database takes a new one: Secrets Manager
    and RDS (or ALTER ROLE) on aws, the 0600 secrets file and ALTER ROLE on the sandbox. The
    sequence (stage, set, verify a login, promote; undo on any failure) is the domain's."""

    def plan_rotation(self) -> tuple[Plan, Rotation]: ...
    def stage(self, rotation: Rotation, new: str) -> None: ...  # the new password, pending (unused)
    def set_password(self, rotation: Rotation, *, old: str, new: str, progress: Progress) -> None: ...
    def promote(self, rotation: Rotation) -> None: ...  # pending -> current (old: previous)
    def promoted(self, rotation: Rotation) -> bool: ...  # whether the pending one is current now
    def unstage(self, rotation: Rotation) -> bool: ...  # drop what is pending; False: nothing was
    # the provider's own rotation (a rotation Lambda): start it; wait for the new current version,
    # returning (version, user, password). Unsupported where there is none.
    def start_provider_rotation(self, rotation: Rotation) -> None: ...
    def provider_rotated(self, rotation: Rotation, progress: Progress) -> tuple[str, str, str]: ...


@dataclass(frozen=True)
class Sizing:
    """The size of the database instance or the cache's replication group as the provider has it."""

    resource: str  # instance id / replication group id
    size: str  # "db.r6g.large" / "cache.r6g.large"
    status: str
    multi_az: bool = False
    window: str | None = None  # the provider's maintenance window, where it applies queued changes


class Scaling(Protocol):
    """Vertical scaling by the provider (RDS instance class, ElastiCache node type). The sandbox
    has none: its database resize is memory settings applied through DataMaintenance."""

    def database_size(self, instance_id: str) -> Sizing: ...
    def resize_database(self, instance_id: str, size: str, *, now: bool) -> None: ...
    def cache_size(self) -> Sizing: ...
    def resize_cache(self, group_id: str, size: str, *, now: bool) -> None: ...
