"""Cache (Redis / ElastiCache) status and failover."""
