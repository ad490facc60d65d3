"""The sandbox's PostgreSQL: one server (server.py), the primary + standby pair
(provision.py), WAL archive and base backups, restore/failover/swap (operations.py),
switchover, and the Database port (database.py)."""
