"""A real PostgreSQL 15 on 127.0.0.1 that accepts TLS connections only, serving a certificate built
like Cloud SQL's: signed by the instance's own CA, CN `<project>:<instance>`, no subject alternative
name at all (so no IP SAN). Each cluster lives in its own temporary directory on a free port.

    ca, other_ca = CertificateAuthority("ca"), CertificateAuthority("other")
    with TlsPostgres(ca.server_certificate("acme-web-prod:shared-pg")) as pg:
        pg.add_login("app", "secret", database="app")
        pg.serve(other_ca.server_certificate("acme-web-prod:shared-pg"))   # swap the certificate live
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # the protocol's SSLRequest message


@dataclass(frozen=True)
class ServerCertificate:
    cert_pem: str
    key_pem: str
    der: bytes


class CertificateAuthority:
    def __init__(self, label: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        # Cloud SQL's per-instance CA is named "Google Cloud SQL Server CA"; the label keeps two apart.
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Google Cloud SQL Server CA ({label}, test)"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google, Inc")])
        now = datetime.datetime.now(datetime.UTC)
        self.name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def server_certificate(self, common_name: str) -> ServerCertificate:
        """A leaf with the instance's connection-style name as CN and no SAN, like Cloud SQL's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Google, Inc")]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        return ServerCertificate(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem, cert.public_bytes(serialization.Encoding.DER))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_certificate(port: int) -> bytes:
    """The DER certificate the server presents, read without verifying anything."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        if raw.recv(1) != b"S":
            raise AssertionError("the server refused TLS")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


class TlsPostgres:
    def __init__(self, certificate: ServerCertificate):
        self.certificate = certificate
        self.port = 0
        self.root = Path()

    def _as_postgres(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        # initdb and postgres refuse to run as root.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=120, cwd=self.root)
        if check and result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr or result.stdout}")
        return result

    def __enter__(self) -> TlsPostgres:
        self.root = Path(tempfile.mkdtemp(prefix="kit-tls-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.socket_dir, "postgres", "postgres")
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust", "--auth-host=reject", "--no-sync")
        # TLS only: no `host` line, so a plain TCP connection matches nothing and is refused.
        (self.data / "pg_hba.conf").write_text("local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        self._write_certificate(self.certificate)
        self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir} "
            f"-c ssl=on -c ssl_cert_file={self.data / 'server.crt'} -c ssl_key_file={self.data / 'server.key'} -c fsync=off"
        )
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-o", options, "-w", "start")
        return self

    def __exit__(self, *exc) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _write_certificate(self, certificate: ServerCertificate) -> None:
        for name, content in (("server.crt", certificate.cert_pem), ("server.key", certificate.key_pem)):
            path = self.data / name
            path.write_text(content)
            path.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")

    def sql(self, statement: str) -> str:
        result = self._as_postgres("psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", statement)
        return result.stdout.strip()

    def add_login(self, user: str, password: str, database: str) -> None:
        self.sql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        self.sql(f'CREATE DATABASE "{database}" OWNER "{user}"')

    def serve(self, certificate: ServerCertificate) -> None:
        """Swaps the served certificate live (PostgreSQL reloads its TLS files on SIGHUP)."""
        self._write_certificate(certificate)
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "reload")
        deadline = time.monotonic() + 30
        while served_certificate(self.port) != certificate.der:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not pick up the new certificate")
            time.sleep(0.1)
        self.certificate = certificate
