"""One PostgreSQL 15 server on loopback: binaries, configuration, start/stop, queries.

PostgreSQL refuses to run as root, so when we are root every server command
runs as the `postgres` system user (see `ServerUser`). All sandbox settings
live in one file we own, `spywatcher_sandbox.conf`, included from
postgresql.conf and rewritten before every start, so a copied data folder
(base backup, restore) never keeps its source's port or role. pg_hba.conf is
rewritten before every start too: every connection needs a password
(scram-sha-256), whatever a copied folder held.
"""

from __future__ import annotations

import os
import pwd
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ....core import commands
from ....core.errors import MissingTool, NotReady, OperationFailed
from ..net import children, pid_alive
from ..state import processes_in

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PACKAGE = "postgresql-15"
TOOLS = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_verifybackup", "pg_rewind", "pg_waldump")
CONF_NAME = "spywatcher_sandbox.conf"
SUPERUSER = "postgres"
HOST = "127.0.0.1"


class ServerUser:
    """Runs PostgreSQL commands as the server's system user (postgres when we are root)."""

    def __init__(self, bin_dir: Path, run_as: str | None, cwd: Path, passfile: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.cwd = cwd
        self.passfile = passfile  # pgpass (0600, the server user's) for pg_basebackup, pg_rewind
        if run_as:
            entry = pwd.getpwnam(run_as)
            self.uid, self.gid = entry.pw_uid, entry.pw_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()

    def tool(self, name: str) -> str:
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise MissingTool(
                f"PostgreSQL 15 `{name}` not found in {self.bin_dir}",
                hint=f"install it with: apt-get install {PACKAGE}",
            )
        return str(path)

    def check_tools(self) -> None:
        for name in TOOLS:
            self.tool(name)

    def pg(
        self, name: str, *args: Any, ok_codes: Sequence[int] = (0,), timeout: float = 600
    ) -> commands.Completed:
        return self.run([self.tool(name), *args], ok_codes=ok_codes, timeout=timeout)

    def run(
        self, argv: Sequence[Any], *, ok_codes: Sequence[int] = (0,), timeout: float = 600
    ) -> commands.Completed:
        cwd = str(self.cwd) if self.cwd.is_dir() else "/"
        # PG* variables of the caller must not redirect our tools to another server.
        env = {k: "" for k in os.environ if k.startswith("PG")}
        if self.passfile is not None:
            env["PGPASSFILE"] = str(self.passfile)
        return commands.run(argv, ok_codes=ok_codes, user=self.run_as, cwd=cwd, timeout=timeout, env=env)

    def can_enter(self, folder: Path) -> bool:
        """Can the server user traverse to `folder` (every parent searchable)?"""
        if not self.run_as:
            return True
        return self.run(["test", "-x", str(folder)], ok_codes=(0, 1)).ok

    def own(self, path: Path) -> None:
        if os.geteuid() == 0 and self.run_as:
            os.chown(path, self.uid, self.gid)

    def mkdir(self, path: Path, mode: int = 0o700) -> None:
        """Create `path` (and parents) owned by the server user."""
        missing = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for folder in reversed(missing):
            folder.mkdir(mode=mode)
            self.own(folder)


def conf_text(settings: dict[str, Any]) -> str:
    lines = ["# Written by spywatcher-ops before every start; edits here are overwritten."]
    for key, value in settings.items():
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, int):
            text = str(value)
        else:
            text = "'" + str(value).replace("'", "''") + "'"
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


def base_settings(port: int) -> dict[str, Any]:
    return {
        "listen_addresses": HOST,
        "port": port,
        "unix_socket_directories": "",  # TCP only: socket paths under deep tmp folders exceed 107 bytes
        "max_connections": 60,
        "wal_level": "replica",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "hot_standby": True,
        "wal_log_hints": True,  # lets pg_rewind turn an old primary into a standby
        "wal_retrieve_retry_interval": "100ms",  # docs/measured.md: 5 s default stalls promote
        "archive_timeout": "10s",
        "recovery_init_sync_method": "syncfs",  # one syncfs() instead of an fsync per file after a crash or restore
        "log_line_prefix": "%m [%p] ",
        "synchronous_standby_names": "",
        "archive_mode": False,
    }


def archive_command(archive: Path) -> str:
    # Copy under a private temporary name, then rename: a reader never sees half a segment,
    # and primary and standby (archive_mode=always) may archive the same segment at once.
    return f'cp "%p" "{archive}/%f.tmp$$" && mv -f "{archive}/%f.tmp$$" "{archive}/%f"'


def restore_command(archive: Path) -> str:
    return f'cp "{archive}/%f" "%p"'


def write_private(user: ServerUser, path: Path, text: str) -> None:
    """Write a file only the server user can read (mode 0600 from its creation)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    user.own(path)


def write_conf(user: ServerUser, data: Path, settings: dict[str, Any]) -> None:
    """Rewrite our settings file and make sure postgresql.conf includes it."""
    conf = data / CONF_NAME
    write_private(user, conf, conf_text(settings))  # primary_conninfo names the passfile
    main = data / "postgresql.conf"
    text = main.read_text()
    include = f"include_if_exists = '{CONF_NAME}'"
    if include not in text:
        main.write_text(text.rstrip("\n") + f"\n{include}\n")


# Who may connect, and how: a password for everyone, superuser and replication included.
# No `trust` and no `peer`: any local user could otherwise become the superuser (and,
# through COPY ... TO PROGRAM, the postgres OS user). `local` covers the socket in case
# one is configured; the sandbox listens on 127.0.0.1 only.
AUTH_METHOD = "scram-sha-256"


def hba_rules(*, tls: bool = False) -> list[str]:
    """pg_hba.conf lines, first match wins. With `tls`, TCP connections must use TLS
    (hostssl); the hook for a sandbox that serves certificates."""
    host = "hostssl" if tls else "host"
    return [
        f"local   all          all                    {AUTH_METHOD}",
        f"{host:<7} all          all          {HOST}/32   {AUTH_METHOD}",
        f"{host:<7} replication  all          {HOST}/32   {AUTH_METHOD}",
    ]


def write_hba(user: ServerUser, data: Path, rules: list[str] | None = None) -> None:
    """Rewrite pg_hba.conf (before every start: a copied folder never keeps another's rules)."""
    lines = [
        "# Written by spywatcher-ops before every start; edits here are overwritten.",
        *(rules if rules is not None else hba_rules()),
    ]
    write_private(user, data / "pg_hba.conf", "\n".join(lines) + "\n")


def set_signal_file(user: ServerUser, data: Path, name: str, present: bool) -> None:
    path = data / name
    if present:
        path.write_text("")
        user.own(path)
    elif path.exists():
        path.unlink()


def initdb(user: ServerUser, data: Path, superuser_password: str) -> None:
    """initdb with the superuser's password set and password authentication from the start."""
    pwfile = data.parent / f".pwfile-{data.name}"
    write_private(user, pwfile, superuser_password + "\n")
    try:
        user.pg(
            "initdb",
            "-D",
            data,
            "-U",
            SUPERUSER,
            f"--auth={AUTH_METHOD}",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
            "--wal-segsize=1",
            "--no-instructions",
        )
    finally:
        pwfile.unlink(missing_ok=True)


def postmaster_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None


def clear_stale_pid(data: Path) -> None:
    """After a SIGKILL: kill the orphans still working in `data`, and drop postmaster.pid.

    A killed postmaster may stay a zombie for a while (init here reaps late), and
    PostgreSQL takes a zombie's pid for a running server; we know it is dead.
    """
    running = postmaster_pid(data)
    if running and pid_alive(running):
        return
    kill_tree(None, data)
    (data / "postmaster.pid").unlink(missing_ok=True)


def start(user: ServerUser, data: Path, log: Path, *, wait: bool = True, timeout: float = 60) -> int:
    """Start the server; with `wait`, until it accepts connections. Returns the postmaster pid."""
    clear_stale_pid(data)
    args: list[Any] = ["-D", data, "-l", log, "-t", str(int(timeout))]
    args += ["-w"] if wait else ["-W"]
    try:
        user.pg("pg_ctl", *args, "start", timeout=timeout + 10)
    except OperationFailed as exc:
        raise OperationFailed(f"PostgreSQL in {data} did not start: {log_tail(log)}") from exc
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = postmaster_pid(data)
        if pid and pid_alive(pid):
            return pid
        time.sleep(0.02)
    raise OperationFailed(f"PostgreSQL in {data} did not start: {log_tail(log)}")


def stop(user: ServerUser, data: Path, pid: int | None, *, timeout: float = 30) -> None:
    """Fast shutdown; if that does not work, SIGKILL the postmaster and its children."""
    pid = postmaster_pid(data) or pid
    if not pid or not pid_alive(pid):
        kill_tree(None, data)  # orphans of a killed postmaster
        return
    if data.is_dir():
        done = user.pg(
            "pg_ctl",
            "-D",
            data,
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
            ok_codes=(0, 1),
            timeout=timeout + 10,
        )
        if done.ok and not pid_alive(pid):
            return
    kill_tree(pid, data)


def kill_tree(pid: int | None, data: Path | None = None) -> list[int]:
    """SIGKILL a postmaster and its children at once (like losing the machine); with `data`,
    also the orphans of an earlier kill still working in that folder."""
    victims = [pid, *children(pid)] if pid else []
    if data is not None:
        victims += [p for p in processes_in(str(data.resolve())) if p not in victims]
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(pid_alive(v) for v in victims) and time.monotonic() < deadline:
        time.sleep(0.005)
    return victims


def one_line(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def log_tail(log: Path, lines: int = 3) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except (FileNotFoundError, PermissionError):
        return f"no log at {log}"
    return " | ".join(tail) or f"empty log {log}"


def connect(
    port: int, *, password: str | None, dbname: str = "postgres", user: str = SUPERUSER, timeout: float = 3
) -> Any:
    import psycopg

    # The sandbox always runs with passwords: None only reaches a server that asks for none
    # (one made before passwords existed, which `sandbox.up` refuses to repair).
    return psycopg.connect(
        host=HOST,
        port=port,
        dbname=dbname,
        user=user,
        password=password,
        connect_timeout=max(2, int(timeout)),
        autocommit=True,
    )  # libpq: whole seconds, 2 at least


def query(
    port: int, sql: str, params: Sequence[Any] = (), *, password: str | None, dbname: str = "postgres"
) -> list[tuple[Any, ...]]:
    with connect(port, dbname=dbname, password=password) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


def _password_refused(port: int) -> NotReady:
    return NotReady(
        f"PostgreSQL on port {port} refused the sandbox's superuser password",
        hint="the password file does not match this server; `inv sandbox.reset --yes` rebuilds the sandbox",
    )


def auth_refused(exc: BaseException) -> bool:
    """The server answered and refused our password (not: it is down or still starting)."""
    import psycopg

    return isinstance(exc, psycopg.OperationalError) and (
        "password authentication failed" in str(exc) or "no password supplied" in str(exc)
    )


def try_query(
    port: int, sql: str, params: Sequence[Any] = (), *, password: str | None, timeout: float = 3
) -> list[tuple[Any, ...]] | None:
    """Like query(), or None if the server cannot be reached (within `timeout` to connect).

    A refused password is not "unreachable": waiting would never end, so it is an error.
    """
    import psycopg

    try:
        with connect(port, password=password, timeout=timeout) as conn:
            cur = conn.execute(sql, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []
    except psycopg.Error as exc:
        if auth_refused(exc):
            raise _password_refused(port) from None
        return None


def in_recovery(port: int, *, password: str | None) -> bool | None:
    rows = try_query(port, "SELECT pg_is_in_recovery()", password=password)
    return None if rows is None else bool(rows[0][0])


def answers(port: int, *, password: str | None, timeout: float = 2) -> bool | None:
    """Does the server answer a query within `timeout`? Bounded, so a frozen (SIGSTOPped)
    server reads as not answering instead of hanging the caller. Returns the answer to
    pg_is_in_recovery(), or None when there is none."""
    import psycopg

    try:
        with connect(port, password=password, timeout=timeout) as conn:
            # the connection can open (TCP accept is the kernel's) while the server is stuck
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            return bool(row[0]) if row else None
    except psycopg.Error as exc:
        if auth_refused(exc):
            raise _password_refused(port) from None
        return None


def pm_status(data: Path) -> str | None:
    """The postmaster's own status line in postmaster.pid: starting, standby, ready, stopping."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    return lines[7].strip() if len(lines) > 7 else None


def wait_ready(
    port: int,
    pid: int,
    log: Path,
    *,
    password: str | None,
    read_write: bool,
    timeout: float,
    interval: float = 0.05,
    progress: Any = None,
    data: Path | None = None,
) -> None:
    """Wait until the server answers (and, with read_write, has left recovery).

    With `data`, polls the postmaster's status file first (no connection attempts,
    no log noise) and connects only once it says ready.
    """
    deadline = time.monotonic() + timeout
    while True:
        status = pm_status(data) if data is not None else None
        if data is None or status == "ready" or (status == "standby" and not read_write):
            state = in_recovery(port, password=password)
            if state is not None and (not read_write or state is False):
                return
        if not pid_alive(pid):
            raise OperationFailed(f"PostgreSQL on port {port} stopped: {log_tail(log)}")
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"PostgreSQL on port {port} not ready after {timeout:.0f} s: {log_tail(log)}"
            )
        if progress:
            # postmaster says "ready" as soon as read-only connections open; replay (and the
            # end-of-recovery checkpoint) can go on for seconds after that.
            label = "recovering" if status in (None, "starting", "standby", "ready") else str(status)
            progress(label + (" (read-only connections open)" if status == "ready" else ""))
        time.sleep(interval)


def require_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise NotReady(
            f"system user `{name}` does not exist; PostgreSQL cannot run as root",
            hint=f"install {PACKAGE} (it creates the user) or run as a non-root user",
        ) from None
