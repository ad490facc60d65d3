"""The local sandbox: real PostgreSQL primary + standby and Redis with sentinels."""
