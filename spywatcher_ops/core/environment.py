"""Config -> Environment.

Which backend implements the parts of each kind of environment is not known
here: the table (`backends/table.py`, the composition root) is handed to
`build`. Core imports no backend (tests/unit/test_layers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .clock import Clock, SystemClock
from .config import EnvSettings, Settings
from .errors import Unsupported
from .journal import Journal, Operation, os_user
from .lock import FileLock, Lock

if TYPE_CHECKING:  # annotations only: ports (~12 ms, its dataclasses) is on every task's start-up path
    from .ports import (
        Cache,
        Cluster,
        ClusterUpgrades,
        Credentials,
        Database,
        DataMaintenance,
        FaultInjector,
        Hosts,
        Infrastructure,
        Monitoring,
        Notifications,
        Permissions,
        Progress,
        Scaling,
    )


class Parts(Protocol):
    """What a backend package provides for one environment."""

    def database(self) -> Database: ...
    def cache(self) -> Cache: ...
    def cluster(self) -> Cluster | None: ...
    def infrastructure(self) -> Infrastructure | None: ...
    def lock(self) -> Lock: ...
    def identity(self) -> dict[str, str]: ...
    def maintenance(self) -> DataMaintenance: ...  # the Sunday job's data-tier steps
    def hosts(self) -> Hosts: ...  # the machines reached over SSH (OS patches)
    def upgrades(self) -> ClusterUpgrades | None: ...  # EKS versions (aws); None: no cluster
    def faults(self) -> FaultInjector | None: ...  # what drills inject beyond the provider's own faults
    def ensure_running(self, progress: Progress) -> None: ...  # sandbox: start or repair its servers
    def monitoring(self) -> Monitoring | None: ...  # alarms and metrics (CloudWatch); None: none
    def notifications(self) -> Notifications | None: ...  # SNS; None: none
    def permissions(self) -> Permissions | None: ...  # IAM policy simulation; None: nothing to simulate
    def credentials(self) -> Credentials: ...  # the database password's store and rotation
    def scaling(self) -> Scaling | None: ...  # the provider's vertical scaling; None: none
    def connect(self) -> None: ...  # build the provider's clients now, before threads share them


_P = TypeVar("_P")

# Builds the parts of one environment; the table maps a kind ("sandbox", "aws") to one.
PartsFactory = Callable[["Environment"], Parts]


@dataclass
class Environment:
    settings: Settings
    env: EnvSettings
    clock: Clock
    backends: Mapping[str, PartsFactory] = field(default_factory=dict, repr=False)
    _parts: Parts | None = field(default=None, repr=False)
    _journal: Journal | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def kind(self) -> str:
        return self.env.kind

    @property
    def parts(self) -> Parts:
        if self._parts is None:
            factory = self.backends.get(self.kind)
            if factory is None:
                raise Unsupported(
                    f"environment {self.name}: no backend for kind {self.kind}; "
                    f"known: {', '.join(self.backends) or 'none (build it through backends.table)'}"
                )
            self._parts = factory(self)
        return self._parts

    @property
    def database(self) -> Database:
        return self.parts.database()

    @property
    def cache(self) -> Cache:
        return self.parts.cache()

    @property
    def cluster(self) -> Cluster:
        cluster = self.parts.cluster()
        if cluster is None:
            raise Unsupported(
                f"environment {self.name} ({self.kind}) has no Kubernetes cluster; "
                "cluster and application tasks need an aws environment"
            )
        return cluster

    @property
    def faults(self) -> FaultInjector:
        faults = self.parts.faults()
        if faults is None:
            raise Unsupported(
                f"environment {self.name} ({self.kind}) cannot freeze or kill processes of its parts; "
                "such drills run on sandbox environments"
            )
        return faults

    @property
    def monitoring(self) -> Monitoring:
        return self._optional(self.parts.monitoring(), "has no CloudWatch (alarms, metrics)")

    @property
    def notifications(self) -> Notifications:
        return self._optional(self.parts.notifications(), "has no SNS to publish to")

    @property
    def permissions(self) -> Permissions:
        return self._optional(self.parts.permissions(), "has no IAM policy to simulate")

    @property
    def credentials(self) -> Credentials:
        return self.parts.credentials()

    @property
    def scaling(self) -> Scaling:
        return self._optional(self.parts.scaling(), "has no provider instance class or node type to change")

    def _optional(self, part: _P | None, lacks: str) -> _P:
        if part is None:
            raise Unsupported(f"environment {self.name} ({self.kind}) {lacks}")
        return part

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            path = self.settings.state_dir / "journal" / f"{self.name}.jsonl"
            self._journal = Journal(path, self.clock, {"os_user": os_user()})
        return self._journal

    @contextmanager
    def operation(self, name: str, args: dict[str, Any], *, mutating: bool = True) -> Iterator[Operation]:
        """Journal the operation; hold the environment lock while it mutates."""
        journal = self.journal
        if mutating:
            journal.who = {**journal.who, **self.parts.identity()}
            with self.parts.lock().hold(journal.who.get("os_user", "?"), name):
                with journal.operation(name, self.name, args) as op:
                    yield op
        else:
            with journal.operation(name, self.name, args) as op:
                yield op

    def file_lock(self) -> FileLock:
        return FileLock(self.settings.state_dir / "locks" / f"{self.name}.lock")


def build(
    settings: Settings, name: str | None, *, backends: Mapping[str, PartsFactory], clock: Clock | None = None
) -> Environment:
    """`backends`: the table of backends (backends.table.BACKENDS in the toolkit; a test may hand its own)."""
    return Environment(
        settings=settings, env=settings.env(name), clock=clock or SystemClock(), backends=backends
    )
