"""The database connections the kit renders, made by the REAL drivers against a REAL PostgreSQL 15
that requires TLS and serves a certificate built like Cloud SQL's (own CA, CN `<project>:<instance>`,
no IP SAN; tests/support/tls_postgres.py):

- node-postgres: npm `pg` 8.23.1 (tests/node), the way the README tells an app to call it;
- psycopg 3 (PyPI `psycopg[binary]`), and `psql`: both libpq.
- The Inngest server (Go, pgx) cannot run here. inngest/inngest v1.43.0 opens its --postgres-uri with
  `sql.Open("pgx", uri)` (pkg/db/postgres/migrations.go) and pins jackc/pgx v5.9.2 (go.mod). pgx
  follows libpq there: `pgconn/config.go`, `configTLS`: `sslrootcert` loads the CA pool, and
  `verify-ca` sets InsecureSkipVerify with a VerifyPeerCertificate that checks the chain against that
  pool and leaves the name unchecked. So Inngest's URI is tested with libpq (psql, psycopg) as the
  faithful stand-in.

Each driver gets exactly what the kit renders: the URL comes out of the rendered with-secrets.sh and
start-inngest.sh, run for real on the secrets fetch-secrets.sh wrote. Only two things are re-pointed,
and the test checks that nothing else changes: the port (Cloud SQL's 5432 -> this server's free port)
and the CA path (the container mount /kit/server-ca.pem -> the rendered server-ca.pem on disk).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from infra.render import CONTAINER_SERVER_CA, EXECUTABLE_FILES, RenderInputs, render_stack
from tests.render.conftest import config_from, example_raw, inputs_for
from tests.render.stand_ins import Recorder
from tests.render.test_fetch_secrets import APP_DB_PASSWORD, INNGEST_DB_PASSWORD, Vm
from tests.support.tls_postgres import PG_BIN, CertificateAuthority, TlsPostgres, served_certificate

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
INSTANCE_CN = "acme-web-prod:shared-pg"  # Cloud SQL names the server <project>:<instance>

psycopg = pytest.importorskip("psycopg", reason="PyPI psycopg is not installed: pip install -r requirements-dev.txt")

missing = [
    what
    for what, present in (
        ("PostgreSQL 15 server (Debian postgresql-15)", (PG_BIN / "initdb").exists()),
        ("psql (Debian postgresql-client-15)", shutil.which("psql") is not None),
        ("node (Debian nodejs)", shutil.which("node") is not None),
        ("npm pg in tests/node (npm ci)", (NODE_DIR / "node_modules" / "pg").is_dir()),
    )
    if not present
]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"missing {', '.join(missing)}: run `sudo make test-deps`")


@pytest.fixture(scope="module")
def authorities():
    return CertificateAuthority("instance"), CertificateAuthority("another")


@pytest.fixture(scope="module")
def server(authorities):
    instance_ca, _ = authorities
    with TlsPostgres(instance_ca.server_certificate(INSTANCE_CN)) as pg:
        pg.add_login("app", APP_DB_PASSWORD, database="app")
        pg.add_login("inngest", INNGEST_DB_PASSWORD, database="inngest")
        yield pg


@pytest.fixture
def serving_another_ca(server, authorities):
    instance_ca, another_ca = authorities
    server.serve(another_ca.server_certificate(INSTANCE_CN))
    yield
    server.serve(instance_ca.server_certificate(INSTANCE_CN))


@pytest.fixture
def rendered(tmp_path, authorities) -> dict[str, str]:
    """The kit's URLs for a VM whose Cloud SQL instance's CA is `instance_ca`, re-pointed at the test server."""
    instance_ca, _ = authorities
    config = config_from(example_raw())
    inputs = inputs_for(config)
    inputs = RenderInputs(project=inputs.project, sql_private_ip="127.0.0.1", secrets=inputs.secrets, server_ca_pem=instance_ca.pem)
    release = tmp_path / "release"
    for path, content in render_stack(config, inputs).items():
        (release / path).parent.mkdir(parents=True, exist_ok=True)
        (release / path).write_text(content)
        (release / path).chmod(0o755 if path in EXECUTABLE_FILES else 0o644)
    vm = Vm(tmp_path, release)
    assert vm.run().returncode == 0
    app = subprocess.run(
        ["/bin/sh", str(release / "with-secrets.sh"), "/bin/sh", "-c", 'printf %s "$DATABASE_URL"'],
        env={"PATH": "/usr/bin:/bin", "KIT_SECRETS_DIR": str(vm.secrets / "app")},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    inngest = Recorder.install(tmp_path / "image-bin", "inngest")
    subprocess.run(
        ["/bin/sh", str(release / "start-inngest.sh")],
        env={"PATH": f"{inngest.path.parent}:/usr/bin:/bin", "KIT_SECRETS_DIR": str(vm.secrets / "inngest")},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    argv = inngest.calls()[0]["argv"]
    inngest_uri = argv[argv.index("--postgres-uri") + 1]
    return {"app": app, "inngest": inngest_uri, "ca_file": str(release / "server-ca.pem")}


def repoint(url: str, port: int, ca_file: str) -> str:
    """The kit's URL with only the port and the CA's path changed; fails if anything else would differ."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert parts.hostname == "127.0.0.1" and parts.port == 5432, url
    assert query["sslrootcert"] == CONTAINER_SERVER_CA, url
    moved = urlunsplit(parts._replace(netloc=parts.netloc.replace(":5432", f":{port}"), query=urlencode({**query, "sslrootcert": ca_file}, safe="/")))
    before, after = urlsplit(moved), dict(parse_qsl(urlsplit(moved).query))
    assert (before.scheme, before.username, before.password, before.path) == (parts.scheme, parts.username, parts.password, parts.path)
    assert {k: v for k, v in after.items() if k != "sslrootcert"} == {k: v for k, v in query.items() if k != "sslrootcert"}
    return moved


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # No PG* variables and an empty HOME: no ~/.postgresql/root.crt, nothing but the URL decides.
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), **extra}


def psql(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    query = "select ssl, current_user from pg_stat_ssl where pid = pg_backend_pid()"
    return subprocess.run(["psql", url, "-X", "-tA", "-F", " ", "-c", query], env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)


def psycopg_connect(url: str) -> tuple[bool, str]:
    with psycopg.connect(url, connect_timeout=20) as connection:
        row = connection.execute("select ssl, current_user from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    return row[0], row[1]


def node_pg(url: str, mode: str, tmp_path: Path) -> dict:
    result = subprocess.run(
        ["node", str(NODE_DIR / "pg_connect.js"), mode], env=clean_env(tmp_path, DATABASE_URL=url), capture_output=True, text=True, timeout=60, cwd=NODE_DIR
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_server_is_cloud_sql_like_tls_only_and_names_no_ip(server, authorities):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(served_certificate(server.port))
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [INSTANCE_CN]
    assert not [e for e in cert.extensions if isinstance(e.value, x509.SubjectAlternativeName)]
    assert cert.issuer == authorities[0].cert.subject
    # A plain connection is refused: only hostssl lines in pg_hba.conf.
    plain = f"postgres://app:{APP_DB_PASSWORD}@127.0.0.1:{server.port}/app?sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        psycopg.connect(plain, connect_timeout=20)


def test_the_kit_renders_verify_ca_with_the_instance_ca(rendered, authorities):
    for url in (rendered["app"], rendered["inngest"]):
        query = dict(parse_qsl(urlsplit(url).query))
        assert query == {"sslmode": "verify-ca", "sslrootcert": CONTAINER_SERVER_CA}
    assert Path(rendered["ca_file"]).read_text() == authorities[0].pem


def test_node_postgres_connects_encrypted_with_the_app_url(server, rendered, tmp_path):
    url = repoint(rendered["app"], server.port, rendered["ca_file"])
    assert node_pg(url, "libpq-compat", tmp_path) == {"ok": True, "ssl": True, "user": "app"}


def test_node_postgres_without_libpq_compat_checks_the_ip_and_fails(server, rendered, tmp_path):
    # Why the README's one option is needed: pg's default reading makes verify-ca verify-full, and
    # Cloud SQL's certificate names no IP.
    url = repoint(rendered["app"], server.port, rendered["ca_file"])
    outcome = node_pg(url, "connection-string", tmp_path)
    assert outcome["ok"] is False and outcome["code"] == "ERR_TLS_CERT_ALTNAME_INVALID", outcome


def test_psycopg_connects_encrypted_with_the_app_and_the_inngest_urls(server, rendered):
    assert psycopg_connect(repoint(rendered["app"], server.port, rendered["ca_file"])) == (True, "app")
    assert psycopg_connect(repoint(rendered["inngest"], server.port, rendered["ca_file"])) == (True, "inngest")


def test_psql_connects_encrypted_with_the_app_and_the_inngest_urls(server, rendered, tmp_path):
    for url, user in ((rendered["app"], "app"), (rendered["inngest"], "inngest")):
        result = psql(repoint(url, server.port, rendered["ca_file"]), tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"t {user}"


def test_every_driver_refuses_a_server_certificate_from_another_ca(server, rendered, serving_another_ca, tmp_path):
    app = repoint(rendered["app"], server.port, rendered["ca_file"])
    inngest = repoint(rendered["inngest"], server.port, rendered["ca_file"])
    outcome = node_pg(app, "libpq-compat", tmp_path)
    assert outcome["ok"] is False and outcome["code"] in {"UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"}, outcome
    for url in (app, inngest):
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            psycopg_connect(url)
        result = psql(url, tmp_path)
        assert result.returncode != 0 and "certificate verify failed" in result.stderr, result.stderr


def test_the_old_sslmode_require_verified_nothing_with_libpq_and_failed_with_node(server, serving_another_ca, tmp_path):
    # The URL the kit rendered before: libpq encrypts and accepts any certificate, node-postgres
    # verifies against the system CAs and fails. Both reasons for the change, shown on the real drivers.
    old = f"postgres://app:{APP_DB_PASSWORD}@127.0.0.1:{server.port}/app?sslmode=require"
    assert psycopg_connect(old) == (True, "app")
    outcome = node_pg(old, "connection-string", tmp_path)
    assert outcome["ok"] is False and outcome["code"] in {"SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"}, outcome
