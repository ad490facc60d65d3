"""The database part of an aws environment: one RDS PostgreSQL instance.

Every mutating method has a `plan_*` twin that returns the exact boto3 calls;
the apply method makes exactly those calls (plus the read-only polls of its
waits). Waits poll every `ops.aws.poll_seconds` (default 3) with a deadline,
never boto3's 30-second waiters, so readiness is seen within seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.clock import iso
from ...core.errors import BadInput, NotReady, OperationFailed, Refused, RolledBack, VerificationFailed
from ...core.plan import Plan, Step
from ...core.ports import (
    MANAGED_BY,
    ConnectionInfo,
    FailoverResult,
    Instance,
    Progress,
    ProviderEvent,
    RestoreWindow,
    Snapshot,
    SwapResult,
    no_progress,
)
from ...core.waiting import wait_for
from .secrets import db_credentials

if TYPE_CHECKING:
    from ...core.environment import Environment


class RestoreInterrupted(OperationFailed, KeyboardInterrupt):
    """Ctrl-C while RDS builds a restore: nothing was rolled back, and the message says so (exit 1)."""


class SwapInterrupted(RolledBack, KeyboardInterrupt):
    """Ctrl-C during a swap, after the original got its name back: exit 4, still an interrupt."""


# Instance states from which RDS will not reach `available` on its own.
DEAD_STATES = {
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "inaccessible-encryption-credentials",
    "restore-error",
    "storage-full",
    "deleting",
}
# Settings RDS restores cannot take; applied by modify_db_instance afterwards.
AFTER_RESTORE = (
    "MonitoringInterval",
    "MonitoringRoleArn",
    "EnablePerformanceInsights",
    "PerformanceInsightsKMSKeyId",
    "PerformanceInsightsRetentionPeriod",
    "BackupRetentionPeriod",
    "PreferredBackupWindow",
    "PreferredMaintenanceWindow",
    "CACertificateIdentifier",
    "MaxAllocatedStorage",
)
# Known failover event messages -> the RDS event ids people search runbooks for.
EVENT_CODES = (
    ("failover started", "RDS-EVENT-0013"),
    ("failover in progress", "RDS-EVENT-0013"),
    ("failover completed", "RDS-EVENT-0049"),
    ("failover complete", "RDS-EVENT-0049"),
)


def ssl_root_cert(value: Any) -> str | None:
    """ops.database.ssl_root_cert -> an existing file's absolute path, or None when unset."""
    if not value:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise BadInput(
            f"ops.database.ssl_root_cert {value}: no such file; use the path of the RDS CA bundle, "
            "e.g. ~/.postgresql/rds-global-bundle.pem (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"
        )
    return str(path.resolve())


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _utc(moment: Any) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _first(items: Any, key: str) -> Any:
    """`key` of the first dict in a list (RDS's DBParameterGroups, OptionGroupMemberships)."""
    for item in items or []:
        return item.get(key)
    return None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def event_code(message: str) -> str | None:
    lowered = message.lower()
    for text, code in EVENT_CODES:
        if text in lowered:
            return code
    return None


class RdsDatabase:
    def __init__(self, environment: Environment, clients: Any) -> None:
        self.environment = environment
        self.clients = clients
        self.settings = environment.settings
        self.env = environment.env
        aws = self.settings.section("aws")
        self.poll = float(aws.get("poll_seconds", 3))
        self.timeouts = {
            "snapshot": float(aws.get("snapshot_timeout_seconds", 7200)),
            "restore": float(aws.get("restore_timeout_seconds", 4 * 3600)),
            "rename": float(aws.get("rename_timeout_seconds", 1800)),
            "failover": float(aws.get("failover_timeout_seconds", 1800)),
        }

    # reading -------------------------------------------------------------
    @property
    def rds(self) -> Any:
        return self.clients.client("rds")

    def instance_id(self) -> str:
        return self.env.resource(self.settings.project, "db")

    def _raw(self, instance_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            found = self.rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"]
        except ClientError as exc:
            if _error_code(exc) == "DBInstanceNotFound":
                return None
            raise
        return found[0] if found else None

    def _require(self, instance_id: str) -> dict[str, Any]:
        raw = self._raw(instance_id)
        if raw is None:
            raise NotReady(
                f"RDS instance {instance_id} not found in {self.env.region or 'the default region'}",
                hint="check the environment's region and resources.db in invoke.yaml",
            )
        return raw

    def _instance(self, raw: dict[str, Any]) -> Instance:
        endpoint = raw.get("Endpoint") or {}
        tags = _tags(raw.get("TagList"))
        return Instance(
            id=raw["DBInstanceIdentifier"],
            status=raw.get("DBInstanceStatus", "?"),
            host=endpoint.get("Address", ""),
            port=int(endpoint.get("Port") or raw.get("DbInstancePort") or 5432),
            engine_version=str(raw.get("EngineVersion", "")),
            multi_az=bool(raw.get("MultiAZ")),
            created_by_us=tags.get("ManagedBy") == MANAGED_BY,
            details={
                "arn": raw.get("DBInstanceArn"),
                "class": raw.get("DBInstanceClass"),
                "availability_zone": raw.get("AvailabilityZone"),
                "secondary_availability_zone": raw.get("SecondaryAvailabilityZone"),
                "storage_type": raw.get("StorageType"),
                "allocated_gib": raw.get("AllocatedStorage"),
                "encrypted": bool(raw.get("StorageEncrypted")),
                "kms_key_id": raw.get("KmsKeyId"),
                "deletion_protection": bool(raw.get("DeletionProtection")),
                "backup_retention_days": raw.get("BackupRetentionPeriod"),
                "created": iso(_utc(raw.get("InstanceCreateTime"))),
                "tags": tags,
            },
        )

    def describe(self, instance_id: str | None = None) -> Instance:
        return self._instance(self._require(instance_id or self.instance_id()))

    def instances(self) -> list[Instance]:
        """Every instance in the account and region (identifiers are unique there)."""
        out: list[Instance] = []
        for page in self.rds.get_paginator("describe_db_instances").paginate():
            out.extend(self._instance(raw) for raw in page["DBInstances"])
        return out

    def connection(self, instance_id: str | None = None) -> ConnectionInfo:
        """Endpoint + Secrets Manager credentials, TLS required.

        `environments.<env>.db_tunnels` maps an instance id to "host:port" for
        reaching a private instance through an SSH/SSM tunnel.
        With `ops.database.ssl_root_cert` (the RDS CA bundle) the server's
        certificate is verified: verify-full (chain and host name), or
        verify-ca through a tunnel, where the host name is the tunnel's.
        """
        target = instance_id or self.instance_id()
        instance = self.describe(target)
        creds = db_credentials(self.clients, self.env.resource(self.settings.project, "db-credentials"))
        host, port = instance.host, str(instance.port)
        tunnel = (self.env.raw.get("db_tunnels") or {}).get(target)
        if tunnel:
            host, _, tunnel_port = str(tunnel).rpartition(":")
            port = tunnel_port or port
        dbname = creds.dbname or str(self.settings.section("database").get("name") or "postgres")
        ca = ssl_root_cert(self.settings.section("database").get("ssl_root_cert"))
        sslmode = ("verify-ca" if tunnel else "verify-full") if ca else "require"
        return ConnectionInfo(
            host=host,
            port=port,
            dbname=dbname,
            user=creds.username,
            password=creds.password,
            sslmode=sslmode,
            sslrootcert=ca,
        )

    def _snapshot(self, raw: dict[str, Any], region: str | None = None) -> Snapshot:
        tags = _tags(raw.get("TagList"))
        size = raw.get("AllocatedStorage")
        return Snapshot(
            id=raw["DBSnapshotIdentifier"],
            source=raw.get("DBInstanceIdentifier", ""),
            kind=raw.get("SnapshotType", "manual"),
            status=raw.get("Status", "?"),
            # a cross-region copy holds the data of its original: that time is the one an RPO needs
            created=_utc(raw.get("OriginalSnapshotCreateTime") or raw.get("SnapshotCreateTime")),
            size_bytes=int(size) * 2**30 if size is not None else None,
            ours=tags.get("ManagedBy") == MANAGED_BY,
            tags=tags,
            region=region or self.env.region,
        )

    def list_snapshots(self) -> list[Snapshot]:
        out: list[Snapshot] = []
        pages = self.rds.get_paginator("describe_db_snapshots").paginate(
            DBInstanceIdentifier=self.instance_id()
        )
        for page in pages:
            out.extend(self._snapshot(raw) for raw in page["DBSnapshots"])
        return out

    def _raw_snapshot(self, snapshot_id: str, region: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            found = self.clients.client("rds", region).describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)
        except ClientError as exc:
            if _error_code(exc) == "DBSnapshotNotFound":
                return None
            raise
        return found["DBSnapshots"][0] if found["DBSnapshots"] else None

    def restorable_window(self, *, fresh: bool = True) -> RestoreWindow:  # RDS's own, always read-only
        """Latest from the instance; earliest from the automated backup's window
        (or, where that is not reported, the oldest automated snapshot)."""
        raw = self._require(self.instance_id())
        retention = int(raw.get("BackupRetentionPeriod") or 0)
        if retention == 0:
            raise NotReady(
                f"{raw['DBInstanceIdentifier']} has automated backups off (retention 0 days); "
                "point-in-time restore is not possible",
                hint="restore from a snapshot with --from-snapshot",
            )
        latest = _utc(raw.get("LatestRestorableTime")) or self.environment.clock.now()
        earliest = self._earliest(raw) or _utc(raw.get("InstanceCreateTime")) or latest
        earliest = max(earliest, latest - timedelta(days=retention))
        return RestoreWindow(earliest=earliest, latest=latest, retention_days=retention)

    def _earliest(self, raw: dict[str, Any]) -> datetime | None:
        backups = self.rds.describe_db_instance_automated_backups(
            DBInstanceIdentifier=raw["DBInstanceIdentifier"]
        ).get("DBInstanceAutomatedBackups", [])
        for backup in backups:
            earliest = _utc((backup.get("RestoreWindow") or {}).get("EarliestTime"))
            if earliest:
                return earliest
        autos = [s.created for s in self.list_snapshots() if s.kind == "automated" and s.created]
        return min(autos) if autos else None

    def events(self, since: datetime, instance_id: str | None = None) -> list[ProviderEvent]:
        """RDS events of the instance (default: the environment's) since `since`."""
        out: list[ProviderEvent] = []
        pages = self.rds.get_paginator("describe_events").paginate(
            SourceIdentifier=instance_id or self.instance_id(), SourceType="db-instance", StartTime=since
        )
        for page in pages:
            for event in page.get("Events", []):
                at = _utc(event.get("Date"))
                if at is None or at < since:
                    continue  # moto ignores StartTime; AWS rounds it
                message = str(event.get("Message", ""))
                out.append(
                    ProviderEvent(
                        at=at,
                        source=str(event.get("SourceIdentifier", "")),
                        message=message,
                        code=event_code(message),
                    )
                )
        return sorted(out, key=lambda e: e.at)

    # applying plans ------------------------------------------------------
    def _call(self, step: Step) -> dict[str, Any]:
        _, _, region = step.target.partition("@")
        client = self.clients.client("rds", region or None)
        result: dict[str, Any] = getattr(client, step.action)(**step.params)
        return result

    def _wait_instance(
        self,
        instance_id: str,
        what: str,
        timeout: float,
        progress: Progress,
        *,
        settled: bool = True,
        resource_id: str | None = None,
    ) -> dict[str, Any]:
        def probe() -> tuple[bool, dict[str, Any], str]:
            raw = self._raw(instance_id)
            if raw is None:
                return False, {}, "not visible yet"
            status = str(raw.get("DBInstanceStatus", "?"))
            if status in DEAD_STATES:
                raise OperationFailed(f"{instance_id} went to state {status} while waiting for {what}")
            pending = raw.get("PendingModifiedValues") or {}
            if resource_id and raw.get("DbiResourceId") != resource_id:
                return False, raw, f"{status} (still the old instance under this name)"
            done = status == "available" and not (settled and pending)
            return done, raw, status if not pending else f"{status}, pending {', '.join(sorted(pending))}"

        return wait_for(
            probe,
            what=what,
            clock=self.environment.clock,
            timeout=timeout,
            interval=self.poll,
            progress=progress,
        )

    def _wait_snapshot(self, snapshot_id: str, region: str | None, progress: Progress) -> dict[str, Any]:
        def probe() -> tuple[bool, dict[str, Any], str]:
            raw = self._raw_snapshot(snapshot_id, region)
            if raw is None:
                return False, {}, "not visible yet"
            status = str(raw.get("Status", "?"))
            if status in ("failed", "deleted", "incompatible-restore"):
                raise OperationFailed(f"snapshot {snapshot_id} went to state {status}")
            return status == "available", raw, f"{status}, {raw.get('PercentProgress', 0)}%"

        where = f" in {region}" if region else ""
        return wait_for(
            probe,
            what=f"snapshot {snapshot_id}{where} to be available",
            clock=self.environment.clock,
            timeout=self.timeouts["snapshot"],
            interval=self.poll,
            progress=progress,
        )

    # snapshots -------------------------------------------------------------
    def plan_snapshot(self, snapshot_id: str, tags: dict[str, str], copy_to_region: str | None) -> Plan:
        raw = self._require(self.instance_id())
        plan = Plan(f"snapshot {raw['DBInstanceIdentifier']} as {snapshot_id}")
        plan.add(
            Step(
                "rds",
                "create_db_snapshot",
                {
                    "DBInstanceIdentifier": raw["DBInstanceIdentifier"],
                    "DBSnapshotIdentifier": snapshot_id,
                    "Tags": _tag_list(tags),
                },
                why="a manual snapshot; kept until pruned",
            )
        )
        if copy_to_region:
            if copy_to_region == self.env.region:
                raise BadInput(
                    f"--copy-to-region {copy_to_region}: that is the environment's own region; "
                    "name another region, e.g. us-west-2"
                )
            keys = dict(self.env.raw.get("kms_keys") or {})
            key = keys.get(copy_to_region)
            if raw.get("StorageEncrypted") and not key:
                configured = ", ".join(sorted(keys)) or "none"
                raise BadInput(
                    f"--copy-to-region {copy_to_region}: no KMS key configured for that region "
                    f"(environments.{self.env.name}.kms_keys; configured: {configured})"
                )
            source_arn = str(raw["DBInstanceArn"]).replace(":db:", ":snapshot:").rsplit(":", 1)[0]
            params: dict[str, Any] = {
                "SourceDBSnapshotIdentifier": f"{source_arn}:{snapshot_id}",
                "TargetDBSnapshotIdentifier": snapshot_id,
                "SourceRegion": self.env.region,
                "Tags": _tag_list({**tags, "CopiedFrom": self.env.region or ""}),
            }
            if key:
                params["KmsKeyId"] = key
            plan.add(
                Step(
                    f"rds@{copy_to_region}",
                    "copy_db_snapshot",
                    params,
                    why=f"cross-region copy, encrypted with the {copy_to_region} key from config",
                )
            )
        return plan

    def create_snapshot(self, plan: Plan, *, wait: bool, progress: Progress) -> Snapshot:
        create, *copies = plan.steps
        raw = self._call(create)["DBSnapshot"]
        snapshot_id = create.params["DBSnapshotIdentifier"]
        if wait or copies:
            raw = self._wait_snapshot(snapshot_id, None, progress)
        for copy in copies:
            region = copy.target.partition("@")[2]
            self._call(copy)
            if wait:
                self._wait_snapshot(copy.params["TargetDBSnapshotIdentifier"], region, progress)
        return self._snapshot(raw)

    def plan_delete_snapshots(self, snapshot_ids: list[str]) -> Plan:
        plan = Plan(f"delete {len(snapshot_ids)} snapshot(s) of {self.instance_id()}")
        for snapshot_id in snapshot_ids:
            raw = self._raw_snapshot(snapshot_id)
            if raw is None:
                raise BadInput(f"snapshot {snapshot_id}: not found")
            snap = self._snapshot(raw)
            if not snap.ours or snap.kind != "manual":
                raise Refused(f"snapshot {snapshot_id} was not made by {MANAGED_BY}; it is never deleted")
            plan.add(Step("rds", "delete_db_snapshot", {"DBSnapshotIdentifier": snapshot_id}))
        return plan

    def delete_snapshots(self, plan: Plan) -> None:
        for step in plan.steps:
            self._call(step)

    # restore ---------------------------------------------------------------
    def plan_restore(self, new_id: str, *, to_time: datetime | None, snapshot_id: str | None) -> Plan:
        source_id = self.instance_id()
        src = self._raw(source_id)
        if src is None and snapshot_id:
            src = self._lost_source(snapshot_id)  # region loss: a copy restored where the source is not
        elif src is None:
            src = self._require(source_id)
        tags = {k: v for k, v in _tags(src.get("TagList")).items() if not k.startswith("aws:")}
        tags.update(
            {
                "ManagedBy": MANAGED_BY,
                "RestoredFrom": snapshot_id or source_id,
                "RestorePoint": iso(to_time) or ("snapshot" if snapshot_id else "latest"),
            }
        )
        common: dict[str, Any] = {
            "DBInstanceClass": src.get("DBInstanceClass"),
            "DBSubnetGroupName": (src.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in src.get("VpcSecurityGroups", [])],
            "DBParameterGroupName": _first(src.get("DBParameterGroups"), "DBParameterGroupName"),
            "MultiAZ": bool(src.get("MultiAZ")),
            "StorageType": src.get("StorageType"),
            "Iops": src.get("Iops"),
            "StorageThroughput": src.get("StorageThroughput") if src.get("StorageType") == "gp3" else None,
            "Port": (src.get("Endpoint") or {}).get("Port"),
            "PubliclyAccessible": src.get("PubliclyAccessible"),
            "AutoMinorVersionUpgrade": src.get("AutoMinorVersionUpgrade"),
            "OptionGroupName": _first(src.get("OptionGroupMemberships"), "OptionGroupName"),
            "EnableIAMDatabaseAuthentication": src.get("IAMDatabaseAuthenticationEnabled"),
            "EnableCloudwatchLogsExports": src.get("EnabledCloudwatchLogsExports") or None,
            "DeletionProtection": bool(src.get("DeletionProtection")),
            "CopyTagsToSnapshot": bool(src.get("CopyTagsToSnapshot")),
            "Tags": _tag_list(tags),
        }
        if str(common.get("OptionGroupName") or "").startswith("default:"):
            common["OptionGroupName"] = None  # RDS picks the default for the engine itself
        common = {k: v for k, v in common.items() if v is not None}
        if snapshot_id:
            snap = self._raw_snapshot(snapshot_id)
            if snap is None:
                raise BadInput(f"--from-snapshot {snapshot_id}: no such snapshot")
            encrypted, kms = bool(snap.get("Encrypted")), snap.get("KmsKeyId")
            plan = Plan(f"restore snapshot {snapshot_id} into new instance {new_id}")
            plan.add(
                Step(
                    "rds",
                    "restore_db_instance_from_db_snapshot",
                    {"DBInstanceIdentifier": new_id, "DBSnapshotIdentifier": snapshot_id, **common},
                    why=f"a new instance with the settings of {source_id}",
                )
            )
        else:
            encrypted, kms = bool(src.get("StorageEncrypted")), src.get("KmsKeyId")
            point: dict[str, Any] = (
                {"RestoreTime": iso(to_time)} if to_time else {"UseLatestRestorableTime": True}
            )
            plan = Plan(
                f"restore {source_id} to {iso(to_time) or 'the latest restorable time'} "
                f"into new instance {new_id}"
            )
            plan.add(
                Step(
                    "rds",
                    "restore_db_instance_to_point_in_time",
                    {
                        "SourceDBInstanceIdentifier": source_id,
                        "TargetDBInstanceIdentifier": new_id,
                        **point,
                        **common,
                    },
                    why=f"a new instance with the settings of {source_id}; the source is not touched",
                )
            )
        later: dict[str, Any] = {}
        monitoring = int(src.get("MonitoringInterval") or 0)
        if monitoring:
            later["MonitoringInterval"] = monitoring
            later["MonitoringRoleArn"] = src.get("MonitoringRoleArn")
        if src.get("PerformanceInsightsEnabled"):
            later["EnablePerformanceInsights"] = True
            later["PerformanceInsightsKMSKeyId"] = src.get("PerformanceInsightsKMSKeyId")
            later["PerformanceInsightsRetentionPeriod"] = src.get("PerformanceInsightsRetentionPeriod")
        later["BackupRetentionPeriod"] = src.get("BackupRetentionPeriod")
        later["PreferredBackupWindow"] = src.get("PreferredBackupWindow")
        later["PreferredMaintenanceWindow"] = src.get("PreferredMaintenanceWindow")
        later["CACertificateIdentifier"] = src.get("CACertificateIdentifier")
        later["MaxAllocatedStorage"] = src.get("MaxAllocatedStorage")
        later = {k: v for k, v in later.items() if v is not None and k in AFTER_RESTORE}
        if later:
            plan.add(
                Step(
                    "rds",
                    "modify_db_instance",
                    {"DBInstanceIdentifier": new_id, **later, "ApplyImmediately": True},
                    why="settings a restore call cannot take (monitoring, insights, backups, windows)",
                )
            )
        plan.notes.append(
            f"encryption is inherited: StorageEncrypted={encrypted}, KmsKeyId={kms}; "
            "checked on the new instance afterwards"
        )
        return plan

    def _lost_source(self, snapshot_id: str) -> dict[str, Any]:
        """What a restore takes from the source instance, for a region that does not have it (the
        region-loss rebuild restores a cross-region snapshot copy): the snapshot's own storage, port
        and tags, and the DR region's network from the environment's `dr_restore` settings
        (db_subnet_group, security_groups, instance_class, multi_az, deletion_protection;
        infra/region.py sets them from terraform.dr_regions)."""
        snap = self._raw_snapshot(snapshot_id)
        if snap is None:
            raise NotReady(f"snapshot {snapshot_id}: not found in {self.env.region}")
        dr = self.env.raw.get("dr_restore") or {}
        groups = dr.get("security_groups") or []
        return {
            "DBInstanceClass": dr.get("instance_class"),
            "DBSubnetGroup": {"DBSubnetGroupName": dr["db_subnet_group"]}
            if dr.get("db_subnet_group")
            else None,
            "VpcSecurityGroups": [{"VpcSecurityGroupId": g} for g in groups],
            "StorageType": snap.get("StorageType"),
            "Iops": snap.get("Iops"),
            "Endpoint": {"Port": snap.get("Port")},
            # what the lost source had can no longer be read: the settings a serving instance needs
            "MultiAZ": bool(dr.get("multi_az", True)),
            "DeletionProtection": bool(dr.get("deletion_protection", True)),
            "CopyTagsToSnapshot": True,
            "TagList": snap.get("TagList"),
        }

    def restore(self, plan: Plan, *, progress: Progress, keep_failed: bool = False) -> Instance:
        # keep_failed: RDS keeps a failed restore in its own state (restore-error) either way;
        # `inv db.delete` removes it
        first, *rest = plan.steps
        new_id = first.params.get("TargetDBInstanceIdentifier") or first.params["DBInstanceIdentifier"]
        self._call(first)
        try:
            self._wait_instance(new_id, f"{new_id} to be available", self.timeouts["restore"], progress)
            for step in rest:
                self._call(step)
                self._wait_instance(
                    new_id, f"{new_id} to apply its settings", self.timeouts["restore"], progress
                )
        except KeyboardInterrupt as exc:  # say what is really left: RDS goes on building it
            raise RestoreInterrupted(
                f"restore {new_id} interrupted while waiting for RDS; RDS goes on creating {new_id} (tagged "
                f"ManagedBy={MANAGED_BY}); once it is available, check it with `inv db.verify --env "
                f"{self.env.name} --instance {new_id}` or remove it with `inv db.delete --env {self.env.name} "
                f"--instance {new_id}`"
            ) from exc
        raw = self._require(new_id)
        problems = self._parity_problems(first, rest, raw)
        if problems:
            raise VerificationFailed(
                f"{new_id} is available but differs from the plan: {'; '.join(problems)}",
                hint="fix with modify_db_instance, or delete it and restore again",
            )
        return self._instance(raw)

    def _parity_problems(self, restore: Step, later: list[Step], raw: dict[str, Any]) -> list[str]:
        want = dict(restore.params)
        for step in later:
            want.update({k: v for k, v in step.params.items() if k in AFTER_RESTORE})
        have: dict[str, Any] = {
            "DBInstanceClass": raw.get("DBInstanceClass"),
            "DBSubnetGroupName": (raw.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
            "VpcSecurityGroupIds": sorted(g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups", [])),
            "DBParameterGroupName": _first(raw.get("DBParameterGroups"), "DBParameterGroupName"),
            "MultiAZ": bool(raw.get("MultiAZ")),
            "StorageType": raw.get("StorageType"),
            "DeletionProtection": bool(raw.get("DeletionProtection")),
            "CopyTagsToSnapshot": bool(raw.get("CopyTagsToSnapshot")),
            "MonitoringInterval": raw.get("MonitoringInterval"),
        }
        problems = []
        for key, value in have.items():
            if key not in want:
                continue
            expected = sorted(want[key]) if isinstance(want[key], list) else want[key]
            if expected != value:
                problems.append(f"{key} is {value!r}, expected {expected!r}")
        if restore.action == "restore_db_instance_from_db_snapshot":
            source = self._raw_snapshot(restore.params["DBSnapshotIdentifier"]) or {}
            encrypted, kms = bool(source.get("Encrypted")), source.get("KmsKeyId")
        else:
            source = self._raw(restore.params["SourceDBInstanceIdentifier"]) or {}
            encrypted, kms = bool(source.get("StorageEncrypted")), source.get("KmsKeyId")
        if bool(raw.get("StorageEncrypted")) != encrypted or (encrypted and raw.get("KmsKeyId") != kms):
            problems.append(
                f"encryption is {raw.get('StorageEncrypted')}/{raw.get('KmsKeyId')}, "
                f"expected {encrypted}/{kms}"
            )
        missing = {t["Key"] for t in want.get("Tags", [])} - set(_tags(raw.get("TagList")))
        if missing:
            problems.append(f"tags missing: {', '.join(sorted(missing))}")
        return problems

    # delete (only what we made) --------------------------------------------
    def plan_delete_instance(self, instance_id: str, *, final_snapshot: str | None = None) -> Plan:
        raw = self._require(instance_id)
        if instance_id == self.instance_id():
            raise Refused(f"{instance_id} serves the database endpoint; it is never deleted by {MANAGED_BY}")
        if _tags(raw.get("TagList")).get("ManagedBy") != MANAGED_BY:
            raise Refused(
                f"{instance_id} was not created by {MANAGED_BY} (no tag ManagedBy={MANAGED_BY}); "
                "it is never deleted by it"
            )
        if final_snapshot and self._raw_snapshot(final_snapshot) is not None:
            raise BadInput(f"final snapshot {final_snapshot}: a snapshot with that name exists already")
        plan = Plan(f"delete instance {instance_id}")
        if raw.get("DeletionProtection"):
            plan.add(
                Step(
                    "rds",
                    "modify_db_instance",
                    {
                        "DBInstanceIdentifier": instance_id,
                        "DeletionProtection": False,
                        "ApplyImmediately": True,
                    },
                )
            )
        final: dict[str, Any] = (
            {"SkipFinalSnapshot": False, "FinalDBSnapshotIdentifier": final_snapshot}
            if final_snapshot
            else {"SkipFinalSnapshot": True}
        )
        plan.add(
            Step(
                "rds",
                "delete_db_instance",
                {"DBInstanceIdentifier": instance_id, **final, "DeleteAutomatedBackups": True},
                why=f"a final snapshot {final_snapshot} is taken first"
                if final_snapshot
                else "no final snapshot",
            )
        )
        return plan

    def delete_instance(self, plan: Plan, *, progress: Progress) -> None:
        instance_id = plan.steps[-1].params["DBInstanceIdentifier"]
        for step in plan.steps:
            self._call(step)

        def gone() -> tuple[bool, None, str]:
            raw = self._raw(instance_id)
            return raw is None, None, "deleted" if raw is None else str(raw.get("DBInstanceStatus"))

        wait_for(
            gone,
            what=f"{instance_id} to be deleted",
            clock=self.environment.clock,
            timeout=self.timeouts["restore"],
            interval=self.poll,
            progress=progress,
        )

    # swap ------------------------------------------------------------------
    def plan_swap(self, new_id: str, replaced_as: str) -> Plan:
        source_id = self.instance_id()
        self._require(source_id)
        self._require(new_id)
        if self._raw(replaced_as) is not None:
            raise BadInput(
                f"{replaced_as}: an instance with that name exists already; the old one needs a free name"
            )
        plan = Plan(f"put {new_id} under the name {source_id}; the current one becomes {replaced_as}")
        plan.add(
            Step(
                "rds",
                "modify_db_instance",
                {
                    "DBInstanceIdentifier": source_id,
                    "NewDBInstanceIdentifier": replaced_as,
                    "ApplyImmediately": True,
                },
                why="move the serving instance aside (it is kept, not deleted)",
            )
        )
        plan.add(
            Step(
                "rds",
                "modify_db_instance",
                {
                    "DBInstanceIdentifier": new_id,
                    "NewDBInstanceIdentifier": source_id,
                    "ApplyImmediately": True,
                },
                why="the restored instance takes the original name and endpoint",
            )
        )
        plan.notes.append(
            "each rename changes the instance's endpoint DNS name; clients see the new "
            "instance once DNS propagates (usually within a few minutes)"
        )
        plan.notes.append(
            f"connections opened before the swap keep talking to the old instance (now {replaced_as}, "
            "still running) until they reconnect"
        )
        return plan

    def swap(self, plan: Plan, *, progress: Progress) -> SwapResult:
        """The two renames of the plan. If anything fails (or Ctrl-C) before the restored
        instance took the name, the serving instance gets its name back by itself."""
        aside, promote = plan.steps
        source_id = aside.params["DBInstanceIdentifier"]
        replaced_as = aside.params["NewDBInstanceIdentifier"]
        new_id = promote.params["DBInstanceIdentifier"]
        new_resource = self._require(new_id).get("DbiResourceId")
        self._call(aside)
        try:
            self._wait_instance(
                replaced_as,
                f"{source_id} to be renamed {replaced_as}",
                self.timeouts["rename"],
                progress,
                settled=False,
            )
            self._call(promote)
        except BaseException as exc:  # noqa: BLE001 - the original name is given back, then raised as what happened
            reason = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else str(exc)
            self._put_back(source_id, replaced_as, new_id, reason, progress)
            message = (
                f"swap of {new_id} failed ({reason}); rolled back: {source_id} has its name back "
                f"(it was {replaced_as} for a moment) and {new_id} is unchanged"
            )
            if isinstance(exc, KeyboardInterrupt):
                raise SwapInterrupted(message) from exc
            raise RolledBack(message) from exc
        self._wait_instance(
            source_id,
            f"{new_id} to be renamed {source_id}",
            self.timeouts["rename"],
            progress,
            settled=False,
            resource_id=new_resource,
        )
        return SwapResult(
            instance=source_id,
            replaced_as=replaced_as,
            reverse_command=f"inv db.swap --env {self.env.name} --instance {replaced_as}",
        )

    def _put_back(
        self, source_id: str, replaced_as: str, new_id: str, reason: str, progress: Progress
    ) -> None:
        back = Step(
            "rds",
            "modify_db_instance",
            {
                "DBInstanceIdentifier": replaced_as,
                "NewDBInstanceIdentifier": source_id,
                "ApplyImmediately": True,
            },
        )
        try:
            if self._raw(replaced_as) is not None:  # the aside rename happened (or is under way)
                self._wait_instance(
                    replaced_as, f"{replaced_as} to settle", self.timeouts["rename"], progress, settled=False
                )
                self._call(back)
            self._wait_instance(
                source_id,
                f"{source_id} to get its name back",
                self.timeouts["rename"],
                progress,
                settled=False,
            )
        except Exception as again:  # noqa: BLE001 - raised below with both errors and the way out
            raise OperationFailed(
                f"swap of {new_id} failed ({reason}) and giving {source_id} its name back failed too ({again})",
                hint=f"rename it back yourself: aws rds modify-db-instance --db-instance-identifier {replaced_as} "
                f"--new-db-instance-identifier {source_id} --apply-immediately",
            ) from again

    # failover ----------------------------------------------------------------
    def plan_failover(self) -> Plan:
        raw = self._require(self.instance_id())
        if not raw.get("MultiAZ"):
            raise NotReady(
                f"{raw['DBInstanceIdentifier']} is not Multi-AZ; a forced failover needs a standby",
                hint="turn on Multi-AZ first (modify-db-instance --multi-az)",
            )
        plan = Plan(f"fail over {raw['DBInstanceIdentifier']} to its standby (Multi-AZ)")
        plan.add(
            Step(
                "rds",
                "reboot_db_instance",
                {"DBInstanceIdentifier": raw["DBInstanceIdentifier"], "ForceFailover": True},
                why="the standby is promoted; connections drop for about a minute",
            )
        )
        return plan

    def failover(self, plan: Plan, *, progress: Progress = no_progress) -> FailoverResult:
        (step,) = plan.steps
        instance_id = step.params["DBInstanceIdentifier"]
        clock = self.environment.clock
        before = self._require(instance_id).get("AvailabilityZone", "?")
        started = clock.now()
        self._call(step)
        after_raw = self._wait_instance(
            instance_id,
            f"{instance_id} to be available after the failover",
            self.timeouts["failover"],
            progress,
        )
        finished = clock.now()
        since = started - timedelta(seconds=5)
        # RDS publishes the completion event around the time the instance is back;
        # give it a few polls so the report has it, then report what there is.
        progress("collecting the failover events")
        deadline = clock.monotonic() + self.poll * 5
        events = self.events(since)
        while not any(e.code == "RDS-EVENT-0049" for e in events) and clock.monotonic() < deadline:
            clock.sleep(self.poll)
            events = self.events(since)
        after = after_raw.get("AvailabilityZone", "?")
        warnings = []
        if after == before and not any(e.code == "RDS-EVENT-0049" for e in events):
            # A Multi-AZ failover moves the primary to the standby's zone; the same zone and no
            # "failover completed" event mean the reboot may not have failed over (moto never does).
            warnings.append(
                f"the primary is still in {after} and RDS reported no failover completion (RDS-EVENT-0049): "
                "the reboot may not have failed over; check `aws rds describe-events` before relying on it"
            )
        return FailoverResult(
            old_primary=f"{instance_id} ({before})",
            new_primary=f"{instance_id} ({after})",
            started=started,
            finished=finished,
            events=events,
            warnings=warnings,
        )
