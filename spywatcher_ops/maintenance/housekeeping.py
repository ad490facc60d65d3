"""Database housekeeping, through a real connection, on both kinds.

- tables whose dead tuples exceed both thresholds get `VACUUM (ANALYZE)`;
- B-tree indexes whose estimated wasted space exceeds `index_bloat_min` are
  rebuilt with `REINDEX INDEX CONCURRENTLY` (reads and writes go on);
- the database's transaction ID age is reported against
  `autovacuum_freeze_max_age`, with a warning above `xid_warn_ratio`.

Every statement runs under `lock_timeout` and `statement_timeout`: when the
application holds a lock, housekeeping gives up on that object (a warning)
instead of queueing, and so never blocks the application behind it.

The index estimate needs no extension: the pages a freshly built B-tree of
the same rows would use (rows x aligned key width, at the default 90 %
fill factor) against the pages the index has.
"""

from __future__ import annotations

import math
from typing import Any

from .steps import Check, StepContext

TABLES_SQL = """
SELECT schemaname, relname, n_dead_tup, n_live_tup
FROM pg_stat_user_tables
WHERE n_dead_tup >= %s AND n_dead_tup::float8 / GREATEST(n_live_tup + n_dead_tup, 1) >= %s
ORDER BY n_dead_tup DESC
"""

INDEXES_SQL = """
SELECT n.nspname, ci.relname, ct.relname, ci.relpages, ci.reltuples, pg_relation_size(ci.oid),
       COALESCE((SELECT sum(s.avg_width) FROM pg_attribute a
                 JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = ct.relname AND s.attname = a.attname
                 WHERE a.attrelid = ct.oid AND a.attnum = ANY (i.indkey)), 8)
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_am am ON am.oid = ci.relam
WHERE am.amname = 'btree' AND i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
"""

LEFTOVER_SQL = """
SELECT n.nspname, ci.relname FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
WHERE NOT i.indisvalid AND ci.relname ~ '_ccnew[0-9]*$'
"""

XID_SQL = """
SELECT age(datfrozenxid), current_setting('autovacuum_freeze_max_age')::bigint
FROM pg_database WHERE datname = current_database()
"""

PAGE = 8192
FILL = 0.9


def estimated_bloat(relpages: int, reltuples: float, key_width: float) -> float | None:
    """Share of the index's pages a fresh build would not need; None without statistics."""
    if relpages <= 1 or reltuples < 0:
        return None
    tuple_bytes = 8 * math.ceil((8 + float(key_width)) / 8) + 4  # header + aligned key, + line pointer
    expected = math.ceil(reltuples * tuple_bytes / (PAGE * FILL)) + 1  # + the metapage
    return max(0.0, 1.0 - expected / relpages)


def _connect(ctx: StepContext) -> Any:
    import psycopg

    info = ctx.env.parts.maintenance().housekeeping_connection()
    conn = psycopg.connect(
        **info.kwargs(), autocommit=True, connect_timeout=5, application_name="spywatcher-ops-maintenance"
    )
    s = ctx.settings
    conn.execute(f"SET lock_timeout = {int(s['lock_timeout_ms'])}")
    conn.execute(f"SET statement_timeout = {int(s['statement_timeout_s']) * 1000}")
    return conn


def _ident(schema: str, name: str) -> Any:
    from psycopg import sql

    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def candidates(conn: Any, s: dict[str, Any]) -> dict[str, Any]:
    tables = [
        {"table": f"{r[0]}.{r[1]}", "schema": r[0], "name": r[1], "dead": int(r[2]), "live": int(r[3])}
        for r in conn.execute(TABLES_SQL, (s["dead_tuples_min"], s["dead_ratio_min"])).fetchall()
    ]
    indexes = []
    for nsp, idx, table, pages, tuples, size, width in conn.execute(INDEXES_SQL).fetchall():
        bloat = estimated_bloat(int(pages), float(tuples), float(width))
        if bloat is None or size < s["index_min_kb"] * 1024 or bloat < s["index_bloat_min"]:
            continue
        indexes.append(
            {
                "index": f"{nsp}.{idx}",
                "schema": nsp,
                "name": idx,
                "table": table,
                "bytes": int(size),
                "bloat": round(bloat, 3),
            }
        )
    age, freeze_max = conn.execute(XID_SQL).fetchone()
    return {"tables": tables, "indexes": indexes, "xid_age": int(age), "freeze_max_age": int(freeze_max)}


class Housekeeping:
    def precheck(self, ctx: StepContext) -> list[Check]:
        try:
            with _connect(ctx) as conn:
                found = candidates(conn, ctx.settings)
        except Exception as exc:  # noqa: BLE001 - no connection is the pre-check's finding
            return [Check("database reachable", "failed", f"{type(exc).__name__}: {exc}")]
        ctx.state["found"] = found
        return [
            Check(
                "database reachable",
                "ok",
                f"{len(found['tables'])} table(s) to vacuum, {len(found['indexes'])} index(es) to rebuild",
            )
        ]

    def action(self, ctx: StepContext) -> dict[str, Any]:
        import psycopg

        s = ctx.settings
        out: dict[str, Any] = {"vacuumed": [], "reindexed": [], "skipped": [], "dropped_leftovers": []}
        with _connect(ctx) as conn:
            for nsp, name in conn.execute(LEFTOVER_SQL).fetchall():
                # an earlier REINDEX CONCURRENTLY that was interrupted left this invalid copy
                conn.execute(b"DROP INDEX CONCURRENTLY IF EXISTS " + _ident(nsp, name).as_bytes(conn))
                out["dropped_leftovers"].append(f"{nsp}.{name}")
            for t in candidates(conn, s)["tables"]:
                ctx.progress(f"VACUUM (ANALYZE) {t['table']} ({t['dead']} dead tuples)")
                try:
                    conn.execute(b"VACUUM (ANALYZE) " + _ident(t["schema"], t["name"]).as_bytes(conn))
                    out["vacuumed"].append({"table": t["table"], "dead_before": t["dead"]})
                    ctx.note("vacuum", f"VACUUM (ANALYZE) {t['table']}: {t['dead']} dead tuples")
                except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
                    out["skipped"].append({"object": t["table"], "why": str(exc).strip().splitlines()[0]})
            found = candidates(conn, s)  # after VACUUM: the index statistics are fresh
            for ix in found["indexes"]:
                ctx.progress(f"REINDEX INDEX CONCURRENTLY {ix['index']} (~{ix['bloat']:.0%} wasted)")
                try:
                    conn.execute(
                        b"REINDEX INDEX CONCURRENTLY " + _ident(ix["schema"], ix["name"]).as_bytes(conn)
                    )
                    after = conn.execute(
                        "SELECT pg_relation_size(%s::regclass)", (f'"{ix["schema"]}"."{ix["name"]}"',)
                    ).fetchone()[0]
                    out["reindexed"].append(
                        {
                            "index": ix["index"],
                            "bytes_before": ix["bytes"],
                            "bytes_after": int(after),
                            "estimated_bloat": ix["bloat"],
                        }
                    )
                    ctx.note("reindex", f"REINDEX CONCURRENTLY {ix['index']}: {ix['bytes']} -> {after} bytes")
                except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
                    out["skipped"].append({"object": ix["index"], "why": str(exc).strip().splitlines()[0]})
            out["xid_age"], out["freeze_max_age"] = found["xid_age"], found["freeze_max_age"]
        ctx.state["result"] = out
        return out

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        out = ctx.state.get("result") or {}
        s = ctx.settings
        checks = []
        with _connect(ctx) as conn:
            still = {t["table"] for t in candidates(conn, s)["tables"]}
            invalid = conn.execute(LEFTOVER_SQL).fetchall()
        vac = [v["table"] for v in out.get("vacuumed", [])]
        left = sorted(set(vac) & still)
        checks.append(
            Check(
                "dead tuples",
                "failed" if left else "ok",
                f"still over the threshold: {', '.join(left)}"
                if left
                else f"{len(vac)} table(s) vacuumed, none left over the threshold",
            )
        )
        checks.append(
            Check(
                "indexes valid",
                "failed" if invalid else "ok",
                f"invalid: {', '.join(f'{a}.{b}' for a, b in invalid)}"
                if invalid
                else f"{len(out.get('reindexed', []))} index(es) rebuilt, all valid",
            )
        )
        if out.get("skipped"):
            checks.append(
                Check(
                    "lock timeouts",
                    "warn",
                    "gave way to the application on: " + ", ".join(x["object"] for x in out["skipped"]),
                )
            )
        ratio = out.get("xid_age", 0) / max(out.get("freeze_max_age", 1), 1)
        checks.append(
            Check(
                "transaction ID age",
                "warn" if ratio > s["xid_warn_ratio"] else "ok",
                f"{out.get('xid_age')} of autovacuum_freeze_max_age {out.get('freeze_max_age')} "
                f"({ratio:.1%}; warning above {s['xid_warn_ratio']:.0%})",
            )
        )
        return checks

    def rollback(self, ctx: StepContext) -> str:
        with _connect(ctx) as conn:
            dropped = []
            for nsp, name in conn.execute(LEFTOVER_SQL).fetchall():
                conn.execute(b"DROP INDEX CONCURRENTLY IF EXISTS " + _ident(nsp, name).as_bytes(conn))
                dropped.append(f"{nsp}.{name}")
        return ("dropped the invalid index copies " + ", ".join(dropped)) if dropped else "nothing to undo"


HOUSEKEEPING = Housekeeping()
