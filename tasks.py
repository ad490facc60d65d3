"""spywatcher-ops: runbook automation and disaster recovery for spywatcher.

Assembles the namespaces; decides nothing. Default environment: the local
sandbox (real PostgreSQL and Redis). `inv --help TASK` documents every option.
"""

from invoke import Collection

from spywatcher_ops import (
    bytecode,  # noqa: F401  (first: the package's modules get their .pyc again)
    invoke_yaml,  # noqa: F401  (invoke reads invoke.yaml and -f files with libyaml)
    teardown,  # noqa: F401  (exit without the final collections: 15-20 ms of every inv)
)
from spywatcher_ops.backends.sandbox import tasks as sandbox
from spywatcher_ops.cluster import app_tasks as app
from spywatcher_ops.cluster import cluster_tasks as cluster
from spywatcher_ops.core import config_tasks as config
from spywatcher_ops.core import parse_errors  # noqa: F401  (invoke's parse errors: exit 2, one error: line)
from spywatcher_ops.drills import tasks as dr
from spywatcher_ops.infra import tasks as infra
from spywatcher_ops.maintenance import tasks as maint
from spywatcher_ops.oncall import tasks as oncall
from spywatcher_ops.recovery import cache_tasks as cache
from spywatcher_ops.recovery import instance_tasks as db_instances
from spywatcher_ops.recovery import tasks as db
from spywatcher_ops.runbooks import tasks as runbook
from spywatcher_ops.status import tasks as status

ns = Collection()
db_tasks = Collection.from_module(db)
db_tasks.add_task(db_instances.instances)  # issue 16's database tasks live beside recovery/tasks.py
db_tasks.add_task(db_instances.rotate_credentials)
db_tasks.add_task(db_instances.resize)
ns.add_collection(db_tasks, name="db")
cache_tasks = Collection.from_module(cache)
cache_tasks.add_task(db_instances.cache_resize, name="resize")
ns.add_collection(cache_tasks, name="cache")
ns.add_collection(Collection.from_module(sandbox), name="sandbox")
ns.add_collection(Collection.from_module(dr), name="dr")
ns.add_collection(Collection.from_module(runbook), name="runbook")
ns.add_collection(Collection.from_module(app), name="app")
ns.add_collection(Collection.from_module(cluster), name="cluster")
ns.add_collection(Collection.from_module(infra), name="infra")
ns.add_task(oncall.oncall)  # top level: the first command after a page
ns.add_task(status.status)  # top level: one screen with the health of every part
ns.add_collection(Collection.from_module(maint), name="maint")
ns.add_collection(Collection.from_module(config), name="config")
