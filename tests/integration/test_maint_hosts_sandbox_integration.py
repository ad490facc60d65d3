"""The sandbox's own SSH host: started and stopped with the sandbox, and patched end
to end by `inv maint.run --env sandbox` (the os-patch step over fabric, for real)."""

from __future__ import annotations

from support.sandbox import sandbox_environment

from spywatcher_ops.backends.sandbox import sshhost
from spywatcher_ops.backends.sandbox.net import pid_alive


def test_up_down_and_purge_of_the_host_alone(state_dir):
    env = sandbox_environment(state_dir)
    first = sshhost.up(env)
    assert first["running"] and first["pending_updates"] == 3
    folder = sshhost.folder(env)
    pids = sshhost.processes(folder)
    assert pids
    again = sshhost.up(env)  # running: kept, same port
    assert again["address"] == first["address"] and sshhost.processes(folder) == pids
    sshhost.down(env)
    assert not [p for p in pids if pid_alive(p)] and not sshhost.status(env)["running"]
    assert sshhost.up(env)["running"]  # starts again from the same folder and keys
    sshhost.down(env, purge=True)
    assert not folder.exists() and not sshhost.processes(folder)
