"""When a reading turns WARN and FAILED (warn_at, fail_at). One place, so the runbooks can cite them,
`inv status` judges by them and the sandbox's alarms fire at them."""

CONNECTIONS = (80.0, 95.0)  # % of max_connections in use
STORAGE_FREE_PCT = (20.0, 10.0)  # % free storage; lower is worse
LAG_BYTES = (16 * 2**20, 256 * 2**20)  # standby replay lag
LAG_S = (5.0, 60.0)
CACHE_MEMORY_PCT = (80.0, 95.0)  # % of maxmemory (or of the node) used
DRILL_AGE_DAYS = 35.0  # no drill for this long: WARN (drills run at least monthly)
