"""TLS certificates of an aws environment: its ACM certificates (found by the
Environment tag) with days to expiry and renewal status, and the certificate the
live API endpoint (health_url) presents over a real, verified TLS handshake."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ...core.errors import OperationFailed
from ...core.ports import Certificate

if TYPE_CHECKING:
    from ...core.environment import Environment


def acm_certificates(environment: Environment, clients: Any) -> list[Certificate]:
    acm = clients.client("acm")
    out = []
    for page in acm.get_paginator("list_certificates").paginate():
        for summary in page.get("CertificateSummaryList", []):
            arn = summary["CertificateArn"]
            tags = {
                t["Key"]: t.get("Value", "")
                for t in acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
            }
            if tags.get("Environment") != environment.name:
                continue
            cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            not_after = cert.get("NotAfter")
            if not_after is None:
                continue  # not issued yet: nothing is served with it
            out.append(
                Certificate(
                    id=arn,
                    subject=str(cert.get("DomainName")),
                    not_after=not_after.astimezone(UTC),
                    source="acm-issued" if cert.get("Type") == "AMAZON_ISSUED" else "imported",
                    details={
                        "status": cert.get("Status"),
                        "in_use_by": cert.get("InUseBy", []),
                        "renewal": (cert.get("RenewalSummary") or {}).get("RenewalStatus"),
                        "renewal_eligibility": cert.get("RenewalEligibility"),
                    },
                )
            )
    return out


def endpoint_certificate(url: str, timeout: float = 5.0) -> Certificate:
    """The certificate the endpoint presents; the handshake verifies it against the system's CAs."""
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        raise OperationFailed(f"health_url {url}: not an https URL; its certificate cannot be checked")
    host, port = parsed.hostname, parsed.port or 443
    context = ssl.create_default_context()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=host) as tls,
        ):
            peer = tls.getpeercert()
    except (OSError, ssl.SSLError) as exc:
        raise OperationFailed(f"TLS handshake with {host}:{port} failed: {exc}") from None
    if not peer:
        raise OperationFailed(f"TLS handshake with {host}:{port}: the server presented no certificate")
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(str(peer["notAfter"])), UTC)
    subject = ",".join(f"{k}={v}" for rdn in peer.get("subject", ()) for k, v in rdn)  # type: ignore[str-unpack]
    return Certificate(
        id=f"endpoint {host}:{port}",
        subject=subject,
        not_after=not_after,
        source="endpoint",
        served_at=f"{host}:{port}",
        details={"serial": peer.get("serialNumber")},
    )
