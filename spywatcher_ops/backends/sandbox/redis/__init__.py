"""The sandbox's Redis: primary, replica and three sentinels (servers.py), the Cache
port (cache.py), the rolling restart (rolling.py)."""
