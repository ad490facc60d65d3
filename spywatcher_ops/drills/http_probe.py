"""The API's health URL as a probe (`environments.<env>.health_url`).

The application drills are judged by it; on aws every other drill watches it
too (not judged), so a report can say when the API served clients again, next
to when the database or cache did.
"""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING

from .probes import Anchor, Cadence, ProbeThread

if TYPE_CHECKING:
    from ..core.environment import Environment


def health_url(env: Environment) -> str | None:
    value = env.env.raw.get("health_url")
    return str(value) if value else None


class HttpHealthProbe(ProbeThread):
    """GET the health URL; a 2xx answer within the timeout is a success."""

    name = "app-health"
    part = "application"
    kind = "read"
    watch_only = False  # True: on the timeline and in the report, but not part of the steady state

    def __init__(self, url: str, anchor: Anchor, cadence: Cadence) -> None:
        super().__init__(anchor, cadence)
        self.url = url

    def once(self) -> None:
        request = urllib.request.Request(self.url, headers={"User-Agent": "spywatcher-ops-drill"})
        with urllib.request.urlopen(request, timeout=self.cadence.op_timeout) as reply:
            reply.read(1024)
            if not 200 <= reply.status < 300:
                raise ConnectionError(f"HTTP {reply.status}")
