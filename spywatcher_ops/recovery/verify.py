"""Check a database instance from the client side, barman-style: each check
prints OK or FAILED with a hint. Credentials come from the environment's
database part (Secrets Manager on AWS), and TLS is required where the part
says so (always on AWS).

Checks: connect, TLS, server version (same major as the instance's engine),
schema present, table count, newest row time in `ops.database.freshness_tables`
(`[{table: events, column: created_at, max_age_s: 3600}]`), and row counts
compared with the source instance where it is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.clock import iso
from ..core.errors import BadInput
from ..core.ports import ConnectionInfo, Instance
from .common import known_instance

if TYPE_CHECKING:
    from ..core.environment import Environment

MAX_TABLES = 200  # exact counts of more than this are a job for a replica, not a check


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped (not a failure)
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


@dataclass
class VerifyReport:
    instance: str
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "target": self.target,
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
        }


def _connect(info: ConnectionInfo, timeout: int) -> Any:
    import psycopg

    return psycopg.connect(
        **info.kwargs(),
        connect_timeout=timeout,
        autocommit=True,
        application_name="spywatcher-ops verify",
        options="-c statement_timeout=30000",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def freshness_specs(database_settings: dict[str, Any]) -> list[dict[str, Any]]:
    specs = []
    for entry in database_settings.get("freshness_tables") or []:
        if not isinstance(entry, dict) or not entry.get("table") or not entry.get("column"):
            raise BadInput(
                f"ops.database.freshness_tables entry {entry!r}: use {{table: NAME, column: NAME}}"
            )
        specs.append(entry)
    return specs


def _tables(conn: Any, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_type = 'BASE TABLE' ORDER BY table_name",
        (schema,),
    ).fetchall()
    return [r[0] for r in rows]


def _counts(conn: Any, schema: str, tables: list[str]) -> dict[str, int]:
    from psycopg import sql

    out = {}
    for table in tables[:MAX_TABLES]:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        out[table] = int(conn.execute(query).fetchone()[0])
    return out


def verify(
    environment: Environment, instance_id: str | None, *, as_of: datetime | None = None
) -> VerifyReport:
    """Run the checks against `instance_id`; the report says OK/FAILED per check.

    The outcome is journalled (`db.verify`, result ok/failed): `db.swap` puts an instance in
    service only after a passed verification of it, recorded there.
    """
    instance = known_instance(environment, instance_id, flag="--instance")
    with environment.operation("db.verify", {"instance": instance.id}, mutating=False) as op:
        report = _verify(environment, instance, as_of)
        op.result = {"instance": instance.id, "ok": report.ok, "failed": [c.name for c in report.failed]}
        if not report.ok:
            op.outcome = "failed"
    return report


def _verify(environment: Environment, instance: Instance, as_of: datetime | None) -> VerifyReport:
    database = environment.database
    settings = environment.settings.section("database")
    schema = str(settings.get("schema") or "public")
    specs = freshness_specs(settings)
    info = database.connection(instance.id)
    report = VerifyReport(instance.id, info.redacted())
    checks = report.checks
    recovery = instance.details.get("recovery") or {}
    if instance.status == "failed":
        detail = f"instance is {instance.status}"
        if recovery and not recovery.get("reached", True):
            detail += f": {recovery.get('summary')}"
        checks.append(
            Check(
                "status",
                False,
                detail,
                f"restore again; `inv db.delete --instance {instance.id}` removes this one",
            )
        )
    if recovery.get("ended_at") and as_of is None:
        as_of = datetime.fromisoformat(str(recovery["ended_at"]).replace("Z", "+00:00"))
    try:
        conn = _connect(info, timeout=10)
    except Exception as exc:  # noqa: BLE001 - any connect failure is this check's FAILED, with its text
        checks.append(
            Check(
                "connect",
                False,
                f"{info.redacted()}: {_first_line(exc)}",
                "check the security group or tunnel, the instance status, and the credentials secret",
            )
        )
        return report
    with conn:
        checks.append(Check("connect", True, f"{info.redacted()} as {info.user}"))
        _check_tls(conn, info, checks)
        _check_version(conn, instance.engine_version, checks)
        if not _check_schema(conn, schema, checks):
            return report
        tables = _tables(conn, schema)
        if tables:
            checks.append(Check("tables", True, f"{len(tables)} table(s) in {schema}"))
            for spec in specs:
                _check_freshness(conn, schema, spec, as_of or environment.clock.now(), checks)
            _check_against_source(environment, instance.id, conn, schema, tables, checks, recovery)
        elif _source_is_empty(environment, instance.id, schema):
            checks.append(Check("tables", True, f"no tables in {schema}, and none in the source either"))
        else:
            checks.append(
                Check(
                    "tables",
                    False,
                    f"schema {schema} has no tables",
                    "wrong database, the application has not created its tables yet, or a restore point before it did",
                )
            )
    return report


def _source_is_empty(environment: Environment, instance_id: str, schema: str) -> bool:
    """True only when the source is reachable, is another instance, and has no tables in `schema`."""
    database = environment.database
    if instance_id.lower() == database.instance_id().lower():
        return False
    try:
        with _connect(database.connection(None), timeout=5) as source:
            return not _tables(source, schema)
    except Exception:  # noqa: BLE001 - unreachable source: no evidence that empty is right
        return False


def _check_tls(conn: Any, info: ConnectionInfo, checks: list[Check]) -> None:
    row = conn.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    on = bool(row and row[0])
    required = info.sslmode in ("require", "verify-ca", "verify-full")
    if on:
        verified = {
            "verify-full": "certificate and host name verified",
            "verify-ca": "certificate verified against the CA bundle",
        }.get(info.sslmode)
        note = verified or "certificate NOT verified: set ops.database.ssl_root_cert to the RDS CA bundle"
        checks.append(Check("tls", True, f"{row[1]} {row[2]}; {note}"))
    else:
        checks.append(
            Check(
                "tls",
                False if required else None,
                "connection is not encrypted",
                "the server must have ssl=on" if required else None,
            )
        )


def _check_version(conn: Any, engine_version: str, checks: list[Check]) -> None:
    version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
    expected = engine_version.split(".")[0] if engine_version else ""
    if expected and version.split(".")[0] != expected:
        checks.append(
            Check(
                "server version",
                False,
                f"{version}, but the instance reports engine {engine_version}",
                "connected to the wrong server? check the endpoint or tunnel",
            )
        )
    else:
        checks.append(Check("server version", True, f"PostgreSQL {version}"))


def _check_schema(conn: Any, schema: str, checks: list[Check]) -> bool:
    present = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if not present:
        checks.append(
            Check(
                "schema",
                False,
                f"schema {schema} is missing",
                "wrong database name in the secret, or a restore point before the schema existed",
            )
        )
        return False
    checks.append(Check("schema", True, f"schema {schema} present"))
    return True


def _check_freshness(
    conn: Any, schema: str, spec: dict[str, Any], reference: datetime, checks: list[Check]
) -> None:
    from psycopg import errors, sql

    table, column = str(spec["table"]), str(spec["column"])
    name = f"freshness {table}.{column}"
    query = sql.SQL("SELECT max({}) FROM {}.{}").format(
        sql.Identifier(column), sql.Identifier(schema), sql.Identifier(table)
    )
    try:
        newest = conn.execute(query).fetchone()[0]
    except (errors.UndefinedTable, errors.UndefinedColumn) as exc:
        checks.append(
            Check(name, False, _first_line(exc), "fix ops.database.freshness_tables or the restore point")
        )
        return
    if newest is None:
        checks.append(
            Check(name, False, f"{table} has no rows", "a restore point before any data was written?")
        )
        return
    if isinstance(newest, datetime):
        moment = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
        age = (reference - moment).total_seconds()
        detail = f"newest row {iso(moment)} ({age:.0f} s before {iso(reference)})"
        limit = spec.get("max_age_s")
        if limit is not None and age > float(limit):
            checks.append(
                Check(name, False, detail, f"older than max_age_s={limit}: data written since is missing")
            )
            return
        checks.append(Check(name, True, detail))
    else:
        checks.append(Check(name, True, f"newest value {newest}"))


def _check_against_source(
    environment: Environment,
    instance_id: str,
    conn: Any,
    schema: str,
    tables: list[str],
    checks: list[Check],
    recovery: dict[str, Any],
) -> None:
    database = environment.database
    source_id = database.instance_id()
    name = f"row counts vs {source_id}"
    if instance_id.lower() == source_id.lower():
        checks.append(Check(name, None, "skipped: this is the source instance"))
        return
    try:
        source_info = database.connection(None)
        source = _connect(source_info, timeout=5)
    except Exception as exc:  # noqa: BLE001 - an unreachable source only skips the comparison
        checks.append(Check(name, None, f"skipped: source not reachable ({_first_line(exc)})"))
        return
    with source:
        source_tables = _tables(source, schema)
        mine = _counts(conn, schema, tables)
        theirs = _counts(source, schema, source_tables)
    missing = sorted(set(theirs) - set(mine))
    if missing:
        checks.append(
            Check(
                name,
                False,
                f"tables missing here: {', '.join(missing[:10])}",
                "restored from a point before these tables existed?",
            )
        )
        return
    emptied = sorted(t for t, n in mine.items() if n == 0 and theirs.get(t, 0) > 0)
    if emptied:
        checks.append(
            Check(
                name,
                False,
                f"empty here but not in the source: {', '.join(emptied[:10])}",
                "a restore point before the data was loaded?",
            )
        )
        return
    differ = [f"{t} {mine[t]} vs {theirs[t]}" for t in sorted(mine) if t in theirs and mine[t] != theirs[t]]
    if differ and recovery and not recovery.get("reached", True):
        # the rows may well have been written before the restore point: recovery never got there
        checks.append(
            Check(
                name,
                False,
                f"{len(differ)} table(s) differ ({'; '.join(differ[:5])}) and recovery "
                f"stopped short: {recovery.get('summary')}",
                "the difference is NOT explained by the restore point; restore again once the "
                "WAL archive is whole",
            )
        )
        return
    if differ:
        # explained only by where recovery really ended (recorded by the restore), not by the request
        end = recovery.get("ended_at")
        point = f"the recovery's end point {end}" if end else "the restore point"
        detail = (
            f"{len(mine)} table(s); {len(differ)} differ ({'; '.join(differ[:5])}): "
            f"expected only for rows written after {point}"
        )
    else:
        detail = f"{len(mine)} table(s), all counts equal"
    checks.append(Check(name, True, detail))
