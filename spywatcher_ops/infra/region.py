"""The DR region, for a rebuild after the loss of the environment's own region.

`environments.<env>.terraform.dr_regions.<region>` says where the rebuild goes:

    dr_regions:
      us-west-2:
        workspace: staging-us-west-2      # the DR region's Terraform workspace
        backend: {bucket: spywatcher-tfstate-usw2, region: us-west-2}   # optional: overrides
        db_subnet_group: spywatcher-staging-db-subnets   # what the restored instance joins there
        security_groups: [sg-0123]
        instance_class: db.t3.medium                     # optional; default: the snapshot's
        multi_az: true                                   # optional (default true)
        deletion_protection: true                        # optional (default true)

The environment seen from the DR region is the same environment (name, journal,
targets) with the region, the Terraform workspace and backend, and the restore
settings of that entry. Its database restores the cross-region snapshot copies
that `inv db.snapshot --copy-to-region` made.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..core.errors import BadInput

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import Snapshot

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def check_region(value: str, *, flag: str = "--param region") -> str:
    if not _REGION.match(value or ""):
        raise BadInput(f"{flag}={value}: not an AWS region name; e.g. region=us-west-2")
    return value


def dr_settings(environment: Environment, region: str) -> dict[str, Any]:
    where = f"environments.{environment.name}.terraform.dr_regions"
    if region == environment.env.region:
        raise BadInput(
            f"--param region={region}: that is {environment.name}'s own region; name the DR region, "
            f"e.g. one of {', '.join(_regions(environment)) or 'those in ' + where}"
        )
    tf = environment.env.raw.get("terraform") or {}
    found = (tf.get("dr_regions") or {}).get(region)
    if not isinstance(found, dict) or not found.get("workspace"):
        known = ", ".join(_regions(environment)) or "none"
        raise BadInput(
            f"--param region={region}: no {where}.{region}.workspace in the configuration; "
            f"configured DR regions: {known}"
        )
    return found


def _regions(environment: Environment) -> list[str]:
    tf = environment.env.raw.get("terraform") or {}
    return sorted((tf.get("dr_regions") or {}).keys())


def dr_environment(environment: Environment, region: str) -> Environment:
    """`environment` as seen from `region`: its region, DR workspace and backend, restore settings."""
    from ..core.environment import Environment as Env

    dr = dr_settings(environment, region)
    raw = dict(environment.env.raw)
    tf = {k: v for k, v in (raw.get("terraform") or {}).items() if k != "dr_regions"}
    tf["workspace"] = dr["workspace"]
    tf["backend"] = {**(tf.get("backend") or {}), **(dr.get("backend") or {})}
    raw["terraform"] = tf
    raw["region"] = region
    keys = ("db_subnet_group", "security_groups", "instance_class", "multi_az", "deletion_protection")
    raw["dr_restore"] = {k: dr[k] for k in keys if k in dr}
    env = replace(environment.env, region=region, raw=raw)
    return Env(settings=environment.settings, env=env, clock=environment.clock, backends=environment.backends)


def newest_copy(dr_env: Environment) -> Snapshot | None:
    """The newest available snapshot of the environment's database held in the DR region (a copy)."""
    snaps = [s for s in dr_env.database.list_snapshots() if s.status == "available" and s.created is not None]
    return max(snaps, key=lambda s: s.created.timestamp() if s.created else 0.0) if snaps else None
