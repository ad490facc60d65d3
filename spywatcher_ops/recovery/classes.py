"""Instance classes the toolkit knows: memory, and what follows from it.

RDS PostgreSQL's default max_connections is LEAST(DBInstanceClassMemory / 9531392, 5000)
(DBInstanceClassMemory is the class's memory less what RDS reserves, about 10 %).
`db.resize` and `cache.resize` accept only classes listed here, so a typo is refused
before any call; on the sandbox a class maps to PostgreSQL memory settings.
"""

from __future__ import annotations

GIB = 2**30

# class -> memory GiB (AWS instance-type documentation)
DB_CLASSES: dict[str, float] = {
    "db.t3.micro": 1,
    "db.t3.small": 2,
    "db.t3.medium": 4,
    "db.t3.large": 8,
    "db.t3.xlarge": 16,
    "db.t3.2xlarge": 32,
    "db.t4g.micro": 1,
    "db.t4g.small": 2,
    "db.t4g.medium": 4,
    "db.t4g.large": 8,
    "db.t4g.xlarge": 16,
    "db.t4g.2xlarge": 32,
    "db.m5.large": 8,
    "db.m5.xlarge": 16,
    "db.m5.2xlarge": 32,
    "db.m5.4xlarge": 64,
    "db.m6g.large": 8,
    "db.m6g.xlarge": 16,
    "db.m6g.2xlarge": 32,
    "db.m6g.4xlarge": 64,
    "db.m6i.large": 8,
    "db.m6i.xlarge": 16,
    "db.m6i.2xlarge": 32,
    "db.m6i.4xlarge": 64,
    "db.r5.large": 16,
    "db.r5.xlarge": 32,
    "db.r5.2xlarge": 64,
    "db.r5.4xlarge": 128,
    "db.r6g.large": 16,
    "db.r6g.xlarge": 32,
    "db.r6g.2xlarge": 64,
    "db.r6g.4xlarge": 128,
    "db.r6i.large": 16,
    "db.r6i.xlarge": 32,
    "db.r6i.2xlarge": 64,
    "db.r6i.4xlarge": 128,
}

CACHE_NODE_TYPES: dict[str, float] = {
    "cache.t3.micro": 0.5,
    "cache.t3.small": 1.37,
    "cache.t3.medium": 3.09,
    "cache.t4g.micro": 0.5,
    "cache.t4g.small": 1.37,
    "cache.t4g.medium": 3.09,
    "cache.m5.large": 6.38,
    "cache.m5.xlarge": 12.93,
    "cache.m5.2xlarge": 26.04,
    "cache.m6g.large": 6.38,
    "cache.m6g.xlarge": 12.93,
    "cache.m6g.2xlarge": 26.04,
    "cache.r5.large": 13.07,
    "cache.r5.xlarge": 26.32,
    "cache.r5.2xlarge": 52.82,
    "cache.r6g.large": 13.07,
    "cache.r6g.xlarge": 26.32,
    "cache.r6g.2xlarge": 52.82,
}


def max_connections(db_class: str) -> int | None:
    memory = DB_CLASSES.get(db_class)
    if memory is None:
        return None
    return min(int(memory * GIB * 0.9 / 9531392), 5000)
