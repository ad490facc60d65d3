"""TLS for the sandbox PostgreSQL, from the sandbox's own certificate authority.

- The CA (`<sandbox>/tls/ca.key`, `ca.crt`) is made once; its key never leaves
  the toolkit user's folder (mode 0600).
- The server certificate (`<pg_base>/tls/server.crt` + `server.key`, owned by
  the server user, key 0600) names 127.0.0.1 and localhost, so clients can
  use sslmode=verify-full with the CA as root. Both nodes serve the same files.
- `server_settings()` is the provisioning hook: the settings file of every
  node turns `ssl` on with these files (made on first use).
- Renewal writes a new certificate and key over the old ones (the previous
  pair kept as *.prev) and reloads the servers: no restart, connections stay.
- `served()` does a real handshake: the PostgreSQL SSLRequest, then TLS, and
  reads the certificate the server presents.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import OperationFailed

if TYPE_CHECKING:
    from .postgres.provision import PgSandbox

HOSTNAME = "localhost"
IP = "127.0.0.1"
CA_DAYS = 3650
SERVER_DAYS = 90
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def ca_paths(box: PgSandbox) -> tuple[Path, Path]:
    folder = box.root / "tls"
    return folder / "ca.key", folder / "ca.crt"


def server_paths(state: dict[str, Any]) -> tuple[Path, Path]:
    folder = Path(state["pg_base"]) / "tls"
    return folder / "server.key", folder / "server.crt"


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def ensure_ca(box: PgSandbox, now: dt.datetime) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key_path, crt_path = ca_paths(box)
    if key_path.exists() and crt_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        return key, x509.load_pem_x509_certificate(crt_path.read_bytes())
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spywatcher-ops sandbox CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _pem_key(key), 0o600)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return key, cert


def issue(box: PgSandbox, now: dt.datetime, days: int) -> tuple[bytes, bytes, Any]:
    """A new server key and certificate signed by the sandbox CA: (key PEM, cert PEM, cert)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    ca_key, ca_cert = ensure_ca(box, now)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOSTNAME), x509.IPAddress(ipaddress.ip_address(IP))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM), cert


def install(box: PgSandbox, state: dict[str, Any], key_pem: bytes, cert_pem: bytes) -> None:
    """Put a key and certificate where the servers read them (server user, key 0600); keep the old pair."""
    key_path, crt_path = server_paths(state)
    user = box.user(state)
    if not key_path.parent.exists():
        user.mkdir(key_path.parent)
    for path in (key_path, crt_path):
        if path.exists():
            prev = path.with_name(path.name + ".prev")
            os.replace(path, prev)
    # the certificate first: a reload between the two writes would pair the old key with the
    # new certificate; PostgreSQL then keeps the SSL context it had (and logs why)
    for path, data, mode in ((crt_path, cert_pem, 0o644), (key_path, key_pem, 0o600)):
        _write(path, data, mode)
        user.own(path)


def restore_previous(box: PgSandbox, state: dict[str, Any]) -> bool:
    key_path, crt_path = server_paths(state)
    prev = [p.with_name(p.name + ".prev") for p in (key_path, crt_path)]
    if not all(p.exists() for p in prev):
        return False
    for p, target in zip(prev, (key_path, crt_path), strict=True):
        os.replace(p, target)
    return True


def server_settings(box: PgSandbox, state: dict[str, Any]) -> dict[str, Any]:
    """The provisioning hook: ssl on, with the sandbox CA's server certificate (made on first use)."""
    key_path, crt_path = server_paths(state)
    if not (key_path.exists() and crt_path.exists()):
        key_pem, cert_pem, _cert = issue(box, box.now(), SERVER_DAYS)
        install(box, state, key_pem, cert_pem)
    return {"ssl": True, "ssl_cert_file": str(crt_path), "ssl_key_file": str(key_path)}


def served(port: int, host: str = IP, timeout: float = 3.0) -> Any:
    """The certificate a PostgreSQL server presents, over a real TLS handshake."""
    from cryptography import x509

    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
        if answer != b"S":
            raise OperationFailed(f"PostgreSQL on {host}:{port} does not serve TLS (answered {answer!r})")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # not create_default_context: no CA bundle to load
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # we read the certificate; verify-full clients check it
        with context.wrap_socket(sock, server_hostname=HOSTNAME) as tls:
            der = tls.getpeercert(binary_form=True)
    if der is None:
        raise OperationFailed(f"PostgreSQL on {host}:{port} presented no certificate")
    return x509.load_der_x509_certificate(der)
