"""The sandbox cache against real redis-server processes (primary, replica, 3 sentinels)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.cache import redis_root

from spywatcher_ops.backends.sandbox.redis.cache import SandboxCache
from spywatcher_ops.backends.sandbox.redis.servers import RedisSandbox, parse_log_time
from spywatcher_ops.core.errors import NotReady


def test_status_of_a_sandbox_never_set_up_says_how_to_start_it(tmp_path: Path) -> None:
    from support.cache import make_environment

    cache = SandboxCache(make_environment(tmp_path))
    assert cache.redis.root == redis_root(tmp_path)
    with pytest.raises(NotReady, match="not set up") as err:
        cache.status()
    assert "inv sandbox.up" in str(err.value)


def test_sentinel_log_lines_become_events(tmp_path: Path) -> None:
    sandbox = RedisSandbox(tmp_path, master_name="m")
    folder = tmp_path / "sentinel-2"
    folder.mkdir()
    (folder / "redis.log").write_text(
        "812:X 26 Nov 2026 06:40:01.123 # +sdown master m 127.0.0.1 21001\n"
        "812:X 26 Nov 2026 06:40:01.200 * Sentinel new configuration saved on disk\n"
        "812:X 26 Nov 2026 06:40:02.456 # +switch-master m 127.0.0.1 21001 127.0.0.1 21002\n"
        "garbage\n"
    )
    since = parse_log_time("26 Nov 2026 06:40:01.500")
    events = sandbox.events(since - timedelta(seconds=1))
    assert [(e.code, e.source) for e in events] == [
        ("+sdown", "sentinel-2"),
        ("+switch-master", "sentinel-2"),
    ]
    assert events[1].message == "+switch-master m 127.0.0.1 21001 127.0.0.1 21002"
    assert [e.code for e in sandbox.events(since)] == ["+switch-master"]
    assert events[0].at.astimezone(UTC).tzinfo is not None
    assert isinstance(events[0].at, datetime)
