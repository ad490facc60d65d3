"""boto3 session and client factory for one aws environment.

Clients are built here only (never at import time), with:
- the environment's region and profile;
- AWS_ENDPOINT_URL honoured by boto3 itself (how tests and trial users reach a moto server);
- an after-call hook that hands every response's RequestId to the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...core.errors import NotReady

RequestIdSink = Callable[[str], None]

# One botocore data loader per process: each new Session otherwise re-reads and re-parses the
# service models (JSON of megabytes) for its first client of a service. A task builds one
# session, but a suite or a bench builds many. The loader only caches files it read.
_shared_loader: Any = None


def _new_session(profile: str | None, region: str | None) -> Any:
    import boto3
    import botocore.session

    global _shared_loader
    core = botocore.session.Session()
    if _shared_loader is None:
        _shared_loader = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _shared_loader)
    session = boto3.Session(profile_name=profile, region_name=region, botocore_session=core)
    paths = _shared_loader.search_paths  # boto3 appends its own data folder per Session: keep one
    paths[:] = list(dict.fromkeys(paths))
    return session


class AwsClients:
    def __init__(
        self, region: str | None, profile: str | None, on_request_id: RequestIdSink | None = None
    ) -> None:
        self.region = region
        self.profile = profile
        self.on_request_id = on_request_id
        self._session: Any = None
        self._clients: dict[tuple[str, str | None], Any] = {}

    @property
    def session(self) -> Any:
        if self._session is None:
            from botocore.exceptions import ProfileNotFound

            try:
                session = _new_session(self.profile, self.region)
            except ProfileNotFound as err:
                name = err.kwargs.get("profile", self.profile)
                raise NotReady(
                    f"AWS profile {name!r} not found in the AWS config files; use a profile that exists "
                    "(environments.<env>.profile or AWS_PROFILE), or none"
                ) from None
            # Without this, the first call of any task ends in botocore's NoCredentialsError traceback.
            if session.get_credentials() is None:
                raise NotReady(
                    "no AWS credentials found (environment variables, profile, SSO, instance role); "
                    "log in (e.g. aws sso login) or set AWS_PROFILE, then run the task again"
                )
            self._session = session
        return self._session

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._clients:
            from botocore.config import Config

            client = self.session.client(
                service,
                region_name=key[1],
                # Our waits poll with their own deadline; keep SDK retries short so a
                # drill measures the service, not the SDK's backoff.
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
            if self.on_request_id is not None:
                client.meta.events.register("after-call.*.*", self._after_call)
            self._clients[key] = client
        return self._clients[key]

    def _after_call(self, parsed: Any = None, **_: Any) -> None:
        if self.on_request_id is None or not isinstance(parsed, dict):
            return
        rid = (parsed.get("ResponseMetadata") or {}).get("RequestId")
        if rid:
            self.on_request_id(str(rid))
