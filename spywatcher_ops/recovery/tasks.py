"""Database snapshots, point-in-time restore, verify, swap and failover."""
