"""Issue 10 item 6 and item 9 (first bullet), on real servers: the sandbox needs passwords
everywhere (PostgreSQL scram-sha-256 for every role, replication included; Redis
requirepass; sentinels their own), keeps them in one 0600 file, never prints or journals
them, runs Redis as the `redis` user when we are root, and `sandbox.status` calls a node
alive only when it answers (a SIGSTOPped primary is not)."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spywatcher_ops.backends.sandbox.postgres import server as pg

pytestmark = pytest.mark.real


def _pg_ports(env: Any) -> dict[str, int]:
    state = env.database.box.statefile.load()
    return {name: int(node["port"]) for name, node in state["nodes"].items() if node["desired"] == "running"}


def _refused(exc: BaseException) -> bool:
    text = str(exc)
    return "no password supplied" in text or "password authentication failed" in text


def test_the_password_file_is_private_and_the_server_files_are_the_server_users(sandbox_env):
    box = sandbox_env.database.box
    info = box.secrets.path.stat()
    assert info.st_mode & 0o777 == 0o600 and info.st_uid == os.geteuid()
    state = box.statefile.load()
    assert state["auth"] == "scram-sha-256"
    server_uid = pwd.getpwnam(state["run_as"]).pw_uid if state["run_as"] else os.geteuid()
    pgpass = Path(state["pg_base"]) / "pgpass"
    assert pgpass.stat().st_mode & 0o777 == 0o600 and pgpass.stat().st_uid == server_uid
    for node in state["nodes"].values():
        hba = Path(node["data"], "pg_hba.conf")
        assert hba.stat().st_mode & 0o777 == 0o600
        rules = [ln.split() for ln in hba.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), rules
    redis = sandbox_env.cache.redis
    for name in redis.ports():
        conf = redis.node_dir(name) / "redis.conf"
        assert conf.stat().st_mode & 0o077 == 0, f"{conf} is readable by others"


def test_postgres_refuses_every_role_without_its_password(sandbox_env):
    db = sandbox_env.database
    for name, port in _pg_ports(sandbox_env).items():  # primary and standby
        for user in ("postgres", db.box.db_user, "replicator"):
            with pytest.raises(psycopg.OperationalError) as refused:
                psycopg.connect(host=pg.HOST, port=port, user=user, dbname="postgres", connect_timeout=3)
            assert _refused(refused.value), (name, user, str(refused.value))
        with pytest.raises(psycopg.OperationalError) as wrong:
            psycopg.connect(
                host=pg.HOST,
                port=port,
                user="postgres",
                password="not-the-password",
                dbname="postgres",
                connect_timeout=3,
            )
        assert "password authentication failed" in str(wrong.value)
    # the connection info the toolkit hands out carries the password: it works as it is
    with psycopg.connect(**db.connection().kwargs(), connect_timeout=3) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (db.box.db_user,)
    with psycopg.connect(**db.admin_connection().kwargs(), connect_timeout=3) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            True,
        )


def test_a_replication_connection_needs_the_replication_password(sandbox_env, tmp_path):
    box = sandbox_env.database.box
    state = box.statefile.load()
    primary = state["nodes"][state["instances"][state["main"]]["primary"]]
    user = box.user(state)
    base = [
        user.tool("pg_basebackup"),
        "-h",
        pg.HOST,
        "-p",
        str(primary["port"]),
        "-U",
        "replicator",
        "-D",
        str(Path(state["pg_base"]) / "nodes" / "auth-test"),
        "-w",
        "-X",
        "none",
        "--no-manifest",
    ]
    # as the server user, but without its pgpass: refused before anything is copied
    env = {**os.environ, "PGPASSFILE": str(tmp_path / "none")}
    argv = ["runuser", "-u", user.run_as, "--", *base] if user.run_as else base
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, cwd="/")
    assert done.returncode != 0 and "no password supplied" in done.stderr, done.stderr
    assert not (Path(state["pg_base"]) / "nodes" / "auth-test").exists()
    # the standby streams as the replication role, with the password from the server user's pgpass
    rows = box.query(primary["port"], "SELECT usename, state FROM pg_stat_replication")
    assert rows and all(r == ("replicator", "streaming") for r in rows), rows


def test_redis_and_sentinels_refuse_clients_without_their_password(sandbox_env):
    import redis as redis_py

    endpoint = sandbox_env.cache.endpoint()
    assert (
        endpoint.password and endpoint.sentinel_password and endpoint.password != endpoint.sentinel_password
    )
    ports = sandbox_env.cache.redis.ports()
    for name, port in ports.items():
        bare = redis_py.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        with pytest.raises(redis_py.AuthenticationError):
            bare.ping()
        bare.close()
        own = endpoint.sentinel_password if name.startswith("sentinel") else endpoint.password
        other = endpoint.password if name.startswith("sentinel") else endpoint.sentinel_password
        with pytest.raises(redis_py.AuthenticationError):
            redis_py.Redis(host="127.0.0.1", port=port, password=other, socket_timeout=2).ping()
        assert redis_py.Redis(host="127.0.0.1", port=port, password=own, socket_timeout=2).ping()
    # what the drills' probes use: sentinels find the master, the master takes writes
    from spywatcher_ops.drills.probes import Cadence, RedisTarget

    client = RedisTarget(endpoint, Cadence()).connect()
    assert client.set("spywatcher-ops:auth-test", "1") and client.delete("spywatcher-ops:auth-test") == 1
    client.close()


def test_redis_servers_do_not_run_as_root(sandbox_env):
    expected = pwd.getpwnam("redis").pw_uid if os.geteuid() == 0 else os.geteuid()
    redis = sandbox_env.cache.redis
    for name in redis.ports():
        pid = redis.node_spec(name)["pid"]
        uids = next(
            ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("Uid:")
        )
        assert {int(u) for u in uids.split()[1:]} == {expected}, (name, uids)


def test_a_frozen_redis_primary_is_not_alive(sandbox_env):
    redis = sandbox_env.cache.redis
    primary = next(n for n in redis.status() if n.role == "primary")
    os.kill(primary.details["pid"], signal.SIGSTOP)
    try:
        row = next(n for n in redis.status() if n.id == primary.id)
    finally:
        os.kill(primary.details["pid"], signal.SIGCONT)
    assert row.alive is False and row.details["process"] == "stopped by SIGSTOP"


def test_restored_instances_and_rebuilt_standbys_keep_the_passwords(sandbox_env):
    db = sandbox_env.database
    snapshot = db.list_snapshots()[0].id
    restored = db.restore(db.plan_restore("auth-restored", to_time=None, snapshot_id=snapshot))
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(
            host=pg.HOST, port=restored.port, user="postgres", dbname="postgres", connect_timeout=3
        )
    assert _refused(refused.value)
    with psycopg.connect(**db.connection("auth-restored").kwargs(), connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    db.delete_instance(db.plan_delete_instance("auth-restored"))
    result = db.failover(db.plan_failover())  # the old primary comes back as a standby (pg_rewind or a copy)
    state = db.box.statefile.load()
    old = state["nodes"][result.old_primary]
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host=pg.HOST, port=old["port"], user="postgres", dbname="postgres", connect_timeout=3)
    assert _refused(refused.value)
    rows = db.box.query(
        state["nodes"][result.new_primary]["port"], "SELECT usename, state FROM pg_stat_replication"
    )
    assert rows == [("replicator", "streaming")]


def test_redis_servers_never_recorded_are_stopped_by_down_and_purge(tmp_path):
    """A run killed after a server daemonized but before its pid was saved: found by its folder."""
    from spywatcher_ops.backends.sandbox.redis.servers import RedisSandbox, default_base

    sandbox = RedisSandbox(tmp_path / "redis", master_name="spywatcher")
    sandbox.up()
    pids = [sandbox.node_spec(n)["pid"] for n in sandbox.ports()]
    state = json.loads(sandbox.state_path.read_text())
    for spec in state["nodes"].values():
        spec["pid"] = None  # as if the run died before recording them
    sandbox.state_path.write_text(json.dumps(state))
    try:
        sandbox.down()
        assert not [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _stat(p)]
    finally:
        sandbox.purge()
    assert not sandbox.root.exists() and not default_base(sandbox.root).exists()


def _stat(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
