"""Renewing the sandbox database's certificate: issue, install, reload (no
restart), and prove it: every node presents the new certificate, and new
TLS connections (sslmode=verify-full against the sandbox CA) opened every
20 ms across the reload all succeed."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed
from ...core.ports import MaintenanceResult, Progress, ProviderEvent
from .postgres import server as pg
from .state import node_alive
from .tls import ca_paths, install, issue, restore_previous, served

if TYPE_CHECKING:
    from ...core.clock import Clock
    from .postgres.provision import PgSandbox

SWITCH_TIMEOUT_S = 10.0


class Connections:
    """Fresh verify-full connections in a loop, counted: what a client reconnecting during
    the reload would see. Each attempt: connect, SELECT 1, disconnect."""

    def __init__(self, box: PgSandbox, port: int, interval: float = 0.02) -> None:
        self.kwargs: dict[str, Any] = {
            "host": pg.HOST,
            "port": port,
            "dbname": "postgres",
            "user": pg.SUPERUSER,
            "password": box.password(),
            "sslmode": "verify-full",
            "sslrootcert": str(ca_paths(box)[1]),
            "connect_timeout": 2,
        }
        self.interval = interval
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-connections", daemon=True)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(**self.kwargs) as conn:
                    conn.execute("SELECT 1").fetchone()
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every failure is what we measure
                self.failed.append(
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
                )
            self._stop.wait(self.interval)

    def __enter__(self) -> Connections:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _serial(port: int) -> str | None:
    try:
        return format(served(port).serial_number, "x")
    except OperationFailed:
        return None  # no TLS served (yet)


def _await(ports: dict[str, int], good: Any, what: str) -> None:
    deadline = time.monotonic() + SWITCH_TIMEOUT_S
    waiting = dict(ports)
    while waiting:
        waiting = {n: p for n, p in waiting.items() if not good(_serial(p))}
        if waiting and time.monotonic() > deadline:
            raise OperationFailed(
                f"{', '.join(waiting)} do not present {what} {SWITCH_TIMEOUT_S:.0f} s "
                "after the reload; see the server log"
            )
        time.sleep(0.02)


def renew(box: PgSandbox, clock: Clock, valid_days: int, progress: Progress) -> MaintenanceResult:
    events: list[ProviderEvent] = []

    def note(code: str, message: str) -> None:
        events.append(ProviderEvent(at=clock.now(), source="sandbox", message=message, code=code))

    with box.statefile.editing() as state:
        main = state["instances"][state["main"]]
        names = [n for n in (main["primary"], main.get("standby")) if n and node_alive(state["nodes"][n])]
        ports = {n: int(state["nodes"][n]["port"]) for n in names}
        before = {n: _serial(p) for n, p in ports.items()}
        if any(v is None for v in before.values()):
            # a sandbox made before it served TLS: turn TLS on first (a reload too), then renew as usual
            for name in names:
                box.configure(state, name)  # writes ssl on, issuing the first certificate
                box.reload(state, name)
            _await(ports, lambda got: got is not None, "TLS")
            before = {n: _serial(p) for n, p in ports.items()}
            note(
                "tls-on",
                f"TLS turned on for {', '.join(names)} (reload); serving {sorted({str(v) for v in before.values()})}",
            )
        key_pem, cert_pem, cert = issue(box, clock.now(), valid_days)
        serial = format(cert.serial_number, "x")
        progress(f"installing certificate {serial} and reloading {', '.join(names)}")
        with Connections(box, ports[main["primary"]]) as conns:
            time.sleep(0.25)  # connections before the reload, too
            install(box, state, key_pem, cert_pem)
            for name in names:
                box.configure(state, name)  # the settings file carries ssl on (tls.server_settings)
            note("installed", f"certificate {serial} (valid {valid_days} days) installed; previous kept")
            try:
                for name in names:
                    box.reload(state, name)
                note("reloaded", f"pg_ctl reload on {', '.join(names)} (no restart)")
                _await(ports, lambda got: got == serial, f"certificate {serial}")
                time.sleep(0.25)  # and after it
            except BaseException:
                restore_previous(box, state)
                for name in names:
                    box.reload(state, name)
                note("rolled-back", "the previous certificate and key are back; servers reloaded")
                raise
        note(
            "served",
            f"every node presents {serial}; {conns.ok} new TLS connections during the reload, "
            f"{len(conns.failed)} failed",
        )
    return MaintenanceResult(
        events,
        {
            "serial": serial,
            "previous": before,
            "not_after": cert.not_valid_after_utc,
            "tls_connections": conns.ok,
            "tls_failed": len(conns.failed),
            "tls_errors": conns.failed[:5],
        },
    )
