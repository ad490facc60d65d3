"""The data-tier steps that ask the provider (DataMaintenance port): engine
maintenance with a switchover, the cache's rolling restart, TLS renewal.
Their post-checks judge what the probes measured during the action."""

from __future__ import annotations

from typing import Any

from ..core.errors import OpsError
from ..core.ports import DataMaintenance
from .steps import Check, StepContext


def _port(ctx: StepContext) -> DataMaintenance:
    return ctx.env.parts.maintenance()


def _events(ctx: StepContext, result: Any) -> None:
    for ev in result.events:
        ctx.note(ev.code or "provider", ev.message, ev.at.timestamp())


class DbEngine:
    def precheck(self, ctx: StepContext) -> list[Check]:
        try:
            pending = [c for c in _port(ctx).pending_changes() if c.part == "database"]
            ctx.state["plan"] = _port(ctx).plan_database_maintenance()
        except OpsError as exc:
            return [Check("standby ready", "failed", exc.message, hint=exc.hint)]
        ctx.state["pending"] = pending
        names = ", ".join(f"{c.name} {c.current} -> {c.pending}" for c in pending) or "nothing pending"
        return [Check("standby ready", "ok", "standby streaming"), Check("pending changes", "ok", names)]

    def action(self, ctx: StepContext) -> dict[str, Any]:
        if not ctx.state.get("pending"):
            return {"applied": {}, "detail": "nothing pending"}
        result = _port(ctx).database_maintenance(ctx.state["plan"], progress=ctx.progress)
        _events(ctx, result)
        return dict(result.details)

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        limit = float(ctx.settings["max_write_pause_s"])
        pause = (measured["impact"].get("db-write") or {}).get("impaired_s")
        lost = int(measured["lost"].get("db-write", 0))
        checks = [
            Check(
                "no acknowledged write lost",
                "failed" if lost else "ok",
                f"{lost} acknowledged write(s) missing after the switchover"
                if lost
                else "every acknowledged probe write is there",
            )
        ]
        if pause is not None:
            checks.append(
                Check(
                    "write pause",
                    "failed" if pause > limit else "ok",
                    f"writes paused {pause:.3f} s (limit {limit:g} s)",
                )
            )
        still = [c.name for c in _port(ctx).pending_changes() if c.part == "database"]
        checks.append(
            Check(
                "nothing pending",
                "failed" if still else "ok",
                f"still pending: {', '.join(still)}" if still else "every pending change applied",
            )
        )
        return checks

    def rollback(self, ctx: StepContext) -> str:
        # apply_pending undoes its own phases (standby back without the change; the old
        # primary back when the standby lacked its WAL); what is left is to say so
        repaired = _port(ctx).repair(progress=ctx.progress)
        still = [c.name for c in _port(ctx).pending_changes() if c.part == "database"]
        return f"{repaired}; still pending: {', '.join(still) or 'nothing'}"


class CacheRestart:
    def precheck(self, ctx: StepContext) -> list[Check]:
        try:
            ctx.state["plan"] = _port(ctx).plan_cache_maintenance()
        except OpsError as exc:
            return [Check("cache ready", "failed", exc.message, hint=exc.hint)]
        return [Check("cache ready", "ok", ctx.state["plan"].title)]

    def action(self, ctx: StepContext) -> dict[str, Any]:
        result = _port(ctx).cache_maintenance(ctx.state["plan"], progress=ctx.progress)
        _events(ctx, result)
        return dict(result.details)

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        limit = float(ctx.settings["max_write_pause_s"])
        pause = (measured["impact"].get("cache-write") or {}).get("impaired_s")
        lost = int(measured["lost"].get("cache-write", 0))
        checks = [
            Check(
                "lost cache writes",
                "warn" if lost else "ok",
                f"{lost} acknowledged cache write(s) lost (asynchronous replication)"
                if lost
                else "no acknowledged cache write lost",
            )
        ]
        if pause is not None:
            checks.append(
                Check(
                    "cache write pause",
                    "failed" if pause > limit else "ok",
                    f"cache writes paused {pause:.3f} s (limit {limit:g} s)",
                )
            )
        down = [n.id for n in ctx.env.cache.status() if n.role in ("primary", "replica") and not n.alive]
        checks.append(
            Check(
                "cache healthy",
                "failed" if down else "ok",
                f"down: {', '.join(down)}" if down else "every node up",
            )
        )
        return checks

    def rollback(self, ctx: StepContext) -> str:
        return _port(ctx).repair(progress=ctx.progress)


class TlsRenew:
    def precheck(self, ctx: StepContext) -> list[Check]:
        try:
            certs = _port(ctx).certificates()
        except OpsError as exc:
            return [Check("certificates", "failed", exc.message, hint=exc.hint)]
        now = ctx.env.clock.now()
        within = int(ctx.settings["renew_within_days"])
        if ctx.env.kind == "aws":
            ctx.state["due"] = False  # checked, not renewed here: ACM renews what it issued
            return _aws_certificate_checks(ctx.env.name, certs, now, within)
        due = [c for c in certs if (c.not_after - now).days < within]
        ctx.state["due"] = bool(due) or bool(ctx.settings["force"]) or not certs
        if not certs:
            return [
                Check("certificates", "ok", "no TLS served yet: a certificate is issued and TLS turned on")
            ]
        listed = "; ".join(
            f"{c.details.get('node', c.served_at)}: {c.subject} serial {c.id} expires {c.not_after:%Y-%m-%d} "
            f"({(c.not_after - now).days} days)"
            for c in certs
        )
        return [
            Check(
                "certificates",
                "ok",
                listed + ("" if ctx.state["due"] else f"; none due within {within} days"),
            )
        ]

    def action(self, ctx: StepContext) -> dict[str, Any]:
        if not ctx.state.get("due"):
            return {"renewed": False}
        port = _port(ctx)
        plan = port.plan_renew_certificate(int(ctx.settings["valid_days"]))
        result = port.renew_certificate(plan, progress=ctx.progress)
        _events(ctx, result)
        ctx.state["result"] = {"renewed": True, **result.details}
        return dict(ctx.state["result"])

    def postcheck(self, ctx: StepContext, measured: dict[str, Any]) -> list[Check]:
        failed = sum(
            int((measured["impact"].get(p) or {}).get("failed") or 0) for p in ("db-write", "db-read")
        )
        checks = [
            Check(
                "client connections",
                "failed" if failed else "ok",
                f"{failed} failed probe attempt(s) during the reload"
                if failed
                else "no failed probe attempt during the reload",
            )
        ]
        result = ctx.state.get("result") or {}
        if not result.get("renewed"):
            return checks
        tls_failed = int(result.get("tls_failed") or 0)
        checks.append(
            Check(
                "new TLS connections",
                "failed" if tls_failed else "ok",
                f"{result.get('tls_connections')} verify-full connections opened across the reload, "
                f"{tls_failed} failed" + (f": {result.get('tls_errors')}" if tls_failed else ""),
            )
        )
        served = {c.details.get("node", c.served_at): c.id for c in _port(ctx).certificates()}
        wrong = {n: s for n, s in served.items() if s != result.get("serial")}
        checks.append(
            Check(
                "new certificate served",
                "failed" if wrong or not served else "ok",
                f"still served: {wrong}" if wrong else f"{', '.join(served)} present {result.get('serial')}",
            )
        )
        return checks

    def rollback(self, ctx: StepContext) -> str:
        return "the previous certificate and key were put back and the servers reloaded"


def _aws_certificate_checks(env: str, certs: list[Any], now: Any, within: int) -> list[Check]:
    checks = []
    for c in certs:
        days = (c.not_after - now).days
        name = f"certificate {c.subject}"
        if days >= within:
            checks.append(Check(name, "ok", f"{c.source} {c.id}: {days} days to expiry"))
        elif c.source == "imported":
            checks.append(
                Check(
                    name,
                    "failed",
                    f"imported certificate {c.id} expires in {days} days "
                    f"(renew within {within}); ACM cannot renew it",
                    hint=f"import its replacement: aws acm import-certificate --certificate-arn {c.id} "
                    "--certificate fileb://cert.pem --private-key fileb://key.pem "
                    "--certificate-chain fileb://chain.pem",
                )
            )
        elif c.source == "acm-issued":
            renewal = c.details.get("renewal")
            ok = renewal in ("SUCCESS", "PENDING_AUTO_RENEWAL")
            checks.append(
                Check(
                    name,
                    "ok" if ok else "failed",
                    f"ACM-issued {c.id}: {days} days to expiry, renewal {renewal or 'not started'}",
                    hint=None
                    if ok
                    else "ACM renews only validated domains: check the certificate's DNS validation records",
                )
            )
        else:
            checks.append(
                Check(
                    name,
                    "failed",
                    f"{c.served_at} presents a certificate that expires in {days} days",
                    hint="the endpoint serves an old certificate: check its load balancer listener",
                )
            )
    return checks or [
        Check("certificates", "warn", f"no ACM certificate tagged Environment={env} and no health_url")
    ]


DB_ENGINE = DbEngine()
CACHE_RESTART = CacheRestart()
TLS_RENEW = TlsRenew()
