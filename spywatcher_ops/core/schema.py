"""The schema of the `ops` configuration, in one place: every key, its type, its default.

`validate(raw, sources)` runs when a task loads the configuration (config.load): an
unknown key or a value of the wrong type is BadInput (exit 2) naming the key, the file
(or variable) it came from and the keys accepted there. A misspelt `rto: {databse: 5}`
is an error instead of a target silently left at its default.

To add a key: add it to SCHEMA below (with its default and a short comment); the shipped
invoke.yaml is checked against it by tests/unit/test_config_schema.py.
Stdlib only, so `inv --list` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInput

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Value:
    """A leaf: accepted Python types (float also takes int; nothing but bool is a bool)."""

    types: tuple[type, ...]
    default: Any = None
    nullable: bool = False

    def what(self) -> str:
        names = {
            str: "a string",
            int: "a whole number",
            float: "a number",
            bool: "true or false",
            list: "a list",
            dict: "a mapping",
        }
        words = " or ".join(names.get(t, t.__name__) for t in self.types)
        return words + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class Section:
    """A mapping with known keys (closed) or, with `each`, any keys whose values all follow `each`
    (`keys` then limits which names are allowed, e.g. the target names)."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    each: Any = None
    keys: tuple[str, ...] | None = None
    nullable: bool = False
    # With `keys`: other names are allowed too (a scenario module brings its own target),
    # unless one reads like a misspelt known key (`databse`): that is the error.
    near_miss_only: bool = False


@dataclass(frozen=True)
class ListOf:
    item: Any
    default: Any = None


def S(*types: type, default: Any = None, null: bool = False) -> Value:  # noqa: N802 - reads as a type
    return Value(types, default, null or default is None)


STR, OPT_STR = S(str, default=""), S(str, null=True)
ANY_MAP = Section(each=Value((str, int, float, bool, list, dict), nullable=True))

# Target names a scenario can be judged by (drills/runner.py: TARGET_FALLBACK maps the rest).
TARGET_NAMES = ("application", "database", "infrastructure", "cache", "restore", "snapshot")

ENVIRONMENT = Section(
    {
        "kind": S(str, default="aws"),
        "region": OPT_STR,
        "profile": OPT_STR,
        "production": S(bool, default=False),
        "allow_drills": S(bool, default=True),
        "kms_keys": ANY_MAP,  # region -> KMS key id
        "resources": ANY_MAP,  # resource -> name overrides
        "db_tunnels": ANY_MAP,  # instance id -> host:port
        "terraform": ANY_MAP,  # dir, workspace, var_files, backend, stateful (backends/terraform.py)
        "replication": S(str, default="synchronous"),  # sandbox
        "state_dir": OPT_STR,  # sandbox
        "pg_bin": OPT_STR,  # sandbox
        "health_url": OPT_STR,  # the API's health URL, probed by drills
        "kube_context": OPT_STR,
        "kubeconfig": OPT_STR,
        "kube_namespace": OPT_STR,
        "drill_suite": ListOf(S(str)),
        "sns_topic_arn": OPT_STR,
        "ssh": ANY_MAP,  # hosts, known_hosts, connect_timeout_seconds (backends/ssh.py)
        "redeploy_stages": ListOf(S(str)),
        "dr_restore": ANY_MAP,  # the DR region's network for a restore (infra/region.py fills it)
    }
)

SCHEMA = Section(
    {
        "project": S(str, default="spywatcher"),
        "cost_center": S(str, default="engineering"),
        "default_env": S(str, default="sandbox"),
        "state_dir": S(str, default=".ops"),
        "status_log": OPT_STR,
        "environments": Section(each=ENVIRONMENT),
        "terraform": Section(
            {
                "binary": OPT_STR,
                "timeout_seconds": S(int, float, default=7200),
                "stage_timeout_seconds": S(int, float, null=True),
                "stateful": ListOf(S(str)),
            }
        ),
        "targets": Section(
            {
                "rto": Section(each=S(float, int), keys=TARGET_NAMES, near_miss_only=True),
                "rpo": Section(each=S(float, int), keys=TARGET_NAMES, near_miss_only=True),
            }
        ),
        "retention": Section({"days": S(int, default=7), "keep_min": S(int, default=3)}),
        "database": Section(
            {
                "name": S(str, default="spywatcher"),
                "user": S(str, default="spywatcher"),
                "schema": S(str, default="public"),
                "freshness_tables": ListOf(S(dict)),
                "ssl_root_cert": OPT_STR,
            }
        ),
        "cache": Section(
            {
                "master_name": S(str, default="spywatcher"),
                "down_after_ms": S(int, null=True),
                "failover_timeout_s": S(int, float, null=True),
                "test_failover_quota": S(int, null=True),
            }
        ),
        "aws": Section(
            {
                "lock_table": S(str, default="spywatcher-ops-locks"),
                "metrics_namespace": S(str, default="Spywatcher/DR"),
                "sns_topic_arn": OPT_STR,
                "poll_seconds": S(int, float, default=3),
                "lock_ttl_seconds": S(int, float, default=900),
                "snapshot_timeout_seconds": S(int, float, default=7200),
                "restore_timeout_seconds": S(int, float, default=14400),
                "rename_timeout_seconds": S(int, float, default=1800),
                "failover_timeout_seconds": S(int, float, default=1800),
            }
        ),
        "maintenance": Section(
            {
                "day": S(str, default="sunday"),
                "start": S(str, default="02:00"),
                "end": S(str, default="04:00"),
                "timezone": S(str, default="UTC"),
                "notice_days": S(int, default=7),
                "cutoff_minutes": S(int, float, default=15),
                "plan": S(str, default="sunday"),
                "plans_dir": S(str, default="maintenance"),
            }
        ),
        "drills": Section(
            {
                "scenario_modules": ListOf(S(str)),
                "suites_dir": OPT_STR,
            }
        ),
        "alarms": ListOf(S(str)),
        "runbooks": Section({"paths": ListOf(S(str))}),
    }
)


def _where(path: Path_, sources: Mapping[Path_, str] | None) -> str:
    """The file or variable a key came from (its own, or the nearest enclosing one's)."""
    if sources:
        for n in range(len(path), 0, -1):
            if path[:n] in sources:
                return sources[path[:n]]
        for p, src in sources.items():  # a key under the path (a section given whole in one file)
            if p[: len(path)] == path:
                return src
    return "the configuration"


def _dotted(path: Path_) -> str:
    return ".".join(("ops", *path))


def validate(raw: Mapping[str, Any], sources: Mapping[Path_, str] | None = None) -> None:
    """BadInput on the first unknown key or wrong type; None when the configuration fits SCHEMA."""
    _check(SCHEMA, raw, (), sources)


def _check(spec: Any, value: Any, path: Path_, sources: Mapping[Path_, str] | None) -> None:
    where = _where(path, sources)
    if isinstance(spec, Section):
        if value is None and (spec.nullable or path):
            return  # an empty section (`runbooks:` with nothing under it) is the defaults
        if not isinstance(value, Mapping):
            raise BadInput(f"{where}: {_dotted(path)} must be a mapping of keys, not {value!r}")
        for key, sub in value.items():
            key = str(key)
            if spec.each is not None and (spec.keys is None or key in spec.keys or _not_a_typo(spec, key)):
                _check(spec.each, sub, (*path, key), sources)
            elif key in spec.fields:
                _check(spec.fields[key], sub, (*path, key), sources)
            else:
                accepted = spec.keys if spec.each is not None and spec.keys else tuple(spec.fields)
                raise BadInput(
                    f"{_where((*path, key), sources)}: {_dotted((*path, key))}: unknown key "
                    f"{key!r}; accepted under {_dotted(path)}: {', '.join(accepted)}"
                )
        return
    if isinstance(spec, ListOf):
        if value is None:
            return
        if not isinstance(value, list):
            raise BadInput(f"{where}: {_dotted(path)} = {value!r}: must be a list, e.g. [a, b]")
        for i, item in enumerate(value):
            _check(spec.item, item, (*path, str(i)), sources)
        return
    assert isinstance(spec, Value)
    if value is None:
        if spec.nullable:
            return
        raise BadInput(f"{where}: {_dotted(path)} is empty; it must be {spec.what()}")
    ok = any(isinstance(value, t) and not (isinstance(value, bool) and t is not bool) for t in spec.types)
    if float in spec.types and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise BadInput(f"{where}: {_dotted(path)} = {value!r}: must be {spec.what()}")


def _not_a_typo(spec: Section, key: str) -> bool:
    import difflib

    return spec.near_miss_only and not difflib.get_close_matches(key, spec.keys or (), n=1, cutoff=0.8)


def defaults(spec: Any = SCHEMA, path: Path_ = ()) -> dict[Path_, Any]:
    """Every leaf key with a default in the schema (the 'default' source of config.show)."""
    out: dict[Path_, Any] = {}
    if isinstance(spec, Section):
        for key, sub in spec.fields.items():
            out.update(defaults(sub, (*path, key)))
    elif isinstance(spec, ListOf):
        out[path] = spec.default if spec.default is not None else []
    elif isinstance(spec, Value):
        out[path] = spec.default
    return out
