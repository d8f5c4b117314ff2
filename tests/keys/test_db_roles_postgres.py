"""The database password rotation against a real PostgreSQL 15: no new connection fails.

A client opens a NEW connection in a loop, with whatever credentials the "service" holds, for the
whole rotation. The rotation is the real planner's plan (infra.keys.plan.plan_db) and the real SQL
(infra.keys.db_roles.roles_sql, run with the real psql as the service's live login, as the VM does).
Two edges are stand-ins, named as such:
- Cloud SQL: roles as `gcp.sql.User` creates them (LOGIN, CREATEROLE, CREATEDB, member of
  cloudsqlsuperuser; Cloud SQL docs, "About PostgreSQL users and roles"), a database owned by
  cloudsqlsuperuser as `gcp.sql.Database` leaves it, and `users.update` as an ALTER ROLE … PASSWORD
  by the cluster's superuser;
- the service's restart: the credentials the client uses switch to what the versions file names.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra import naming
from infra.keys import db_roles
from infra.keys.model import DB_SLOTS
from infra.keys.plan import AddVersion, ApplyVersions, DisableVersion, EnsureDbRoles, MoveAliases, RetireLogins, SetLoginPassword, plan_db
from infra.keys.values import new_db_password
from tests.keys.states import files, secret

psycopg = pytest.importorskip("psycopg", reason="psycopg is missing: pip install -r requirements-dev.txt")

PG_BIN = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or shutil.which("psql") is None,
    reason="PostgreSQL 15 (server and psql) is not installed; `sudo make test-deps` installs postgresql-15",
)

OWNER = naming.APP_DB_USER
DATABASE = naming.APP_DB_NAME
LOGICAL = naming.DB_APP_PASSWORD
ADMIN = "kit_admin"  # the cluster's superuser: stands in for Cloud SQL's Admin API


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    data: Path
    sockets: Path
    port: int
    as_user: list[str]

    def admin(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(
            [*self.as_user, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockets), "-p", str(self.port), "-U", ADMIN, "-d", database, "-c", sql],
            check=True, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def as_login(self, user: str, password: str, sql: str) -> subprocess.CompletedProcess:
        """psql over TCP with a password, as the VM's one-shot psql runs roles_sql."""
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": user, "PGPASSWORD": password, "PGDATABASE": DATABASE}
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], input=sql, env=env, capture_output=True, text=True, timeout=30)

    def connect(self, user: str, password: str):
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, password=password, dbname=DATABASE, connect_timeout=5, autocommit=True)


@pytest.fixture
def cluster():
    # initdb refuses root: as root, the cluster runs as the postgres user, in a directory it can
    # reach (pytest's own temporary directories are private to root).
    root = os.geteuid() == 0
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    base = Path(tempfile.mkdtemp(prefix="kit-pg-"))
    if root:
        shutil.chown(base, "postgres", "postgres")
    data, sockets = base / "data", base / "sockets"
    run = lambda argv: subprocess.run([*as_user, *argv], check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run(["mkdir", str(sockets)])
    run([str(PG_BIN / "initdb"), "-D", str(data), "-U", ADMIN, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"])
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"])
    cluster = Cluster(data, sockets, port, as_user)
    try:
        yield cluster
    finally:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Service:
    """The credentials the service connects with; a restart swaps them."""

    user: str
    password: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def restart(self, user: str, password: str) -> None:
        with self.lock:
            self.user, self.password = user, password

    def credentials(self) -> tuple[str, str]:
        with self.lock:
            return self.user, self.password


class NewConnections(threading.Thread):
    """Opens a new connection after another, runs a query on the owner's table, closes it."""

    def __init__(self, cluster: Cluster, service: Service):
        super().__init__(daemon=True)
        self.cluster, self.service = cluster, service
        self.opened = 0
        self.failures: list[str] = []
        self.stop_flag = threading.Event()
        self.progress = threading.Condition()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            user, password = self.service.credentials()
            try:
                with self.cluster.connect(user, password) as conn:
                    conn.execute("SELECT count(*) FROM legacy").fetchone()
            except psycopg.Error as error:
                self.failures.append(f"{user}: {type(error).__name__}: {str(error).strip().splitlines()[0]}")
            with self.progress:
                self.opened += 1
                self.progress.notify_all()

    def wait_for(self, more: int) -> None:
        """Until `more` further connections were attempted: each rotation window sees some."""
        with self.progress:
            target = self.opened + more
            assert self.progress.wait_for(lambda: self.opened >= target, timeout=60), "the client stopped opening connections"


def cloud_sql_as_pulumi_leaves_it(cluster: Cluster, first_password: str) -> None:
    cluster.admin("CREATE ROLE cloudsqlsuperuser NOLOGIN CREATEROLE CREATEDB")
    cluster.admin(f"CREATE ROLE {OWNER} LOGIN CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser PASSWORD '{first_password}'")
    for login in db_roles.logins_of(OWNER):
        cluster.admin(f"CREATE ROLE {login} LOGIN CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser PASSWORD '{new_db_password()}'")
    cluster.admin(f"CREATE DATABASE {DATABASE} OWNER cloudsqlsuperuser")


@dataclass
class Rotation:
    """Executes the planner's steps against the real cluster (Cloud SQL and the restart stand in)."""

    cluster: Cluster
    service: Service
    client: NewConnections
    values: dict[int, str]

    def run(self, steps) -> None:
        for step in steps:
            if isinstance(step, AddVersion):
                self.values[step.predicted] = new_db_password()
            elif isinstance(step, EnsureDbRoles | RetireLogins):
                done = self.cluster.as_login(*self.service.credentials(), db_roles.roles_sql(step.owner))
                assert done.returncode == 0, done.stderr
                for role in getattr(step, "roles", ()):
                    self.cluster.admin(f"ALTER ROLE {role} PASSWORD '{new_db_password()}'")
            elif isinstance(step, SetLoginPassword):
                self.cluster.admin(f"ALTER ROLE {step.login} PASSWORD '{self.values[step.number]}'")
            elif isinstance(step, ApplyVersions):
                login_slot, version_slot = DB_SLOTS[LOGICAL]
                self.service.restart(step.versions[login_slot][0], self.values[step.versions[version_slot][0]])
            else:
                assert isinstance(step, MoveAliases | DisableVersion), step
            self.client.wait_for(3)


def test_a_rotation_with_two_login_roles_fails_no_new_connection(cluster, capsys):
    first = new_db_password()
    cloud_sql_as_pulumi_leaves_it(cluster, first)
    service = Service(OWNER, first)
    # What the kit created before two login roles: objects owned by the role it logged in as.
    with cluster.connect(OWNER, first) as conn:
        conn.execute("CREATE TABLE legacy (id int)")
        conn.execute("INSERT INTO legacy VALUES (1)")
    client = NewConnections(cluster, service)
    client.start()
    rotation = Rotation(cluster, service, client, {1: first})
    try:
        live = files()
        state = secret(LOGICAL, {1: "ENABLED"})
        for number in (2, 3, 4):  # owner -> app_a -> app_b -> app_a
            steps = plan_db(state, live, resume=False)
            rotation.run(steps)
            apply = next(step for step in steps if isinstance(step, ApplyVersions))
            live = apply.versions
            state = secret(LOGICAL, {n: ("ENABLED" if n == number else "DISABLED") for n in range(1, number + 1)}, {"current": number, "previous": number - 1})
            if number == 2:
                # Objects made by one login role are the owner's, so the other login role can use them.
                user, password = service.credentials()
                with cluster.connect(user, password) as conn:
                    conn.execute("CREATE TABLE made_by_first_login (id int)")
                    conn.execute("INSERT INTO legacy VALUES (2)")
    finally:
        client.stop_flag.set()
        client.join(timeout=30)

    assert client.failures == [], client.failures[:5]
    assert client.opened >= 40
    user, password = service.credentials()
    assert user == "app_a"
    with cluster.connect(user, password) as conn:
        assert conn.execute("SELECT current_user, session_user").fetchone() == (OWNER, "app_a")
        conn.execute("INSERT INTO made_by_first_login VALUES (1)")
        conn.execute("ALTER TABLE made_by_first_login ADD COLUMN note text")  # only the owner may
        conn.execute("ALTER TABLE legacy ADD COLUMN note text")
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall())
        assert owners == {"legacy": OWNER, "made_by_first_login": OWNER}
        can_login = dict(conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('app', 'app_a', 'app_b')").fetchall())
    # The owner is NOLOGIN once no service logs in as it; both login roles can log in.
    assert can_login == {"app": False, "app_a": True, "app_b": True}
    # Every retired login refuses the password it had.
    for retired, old_password in (("app", first), ("app_b", rotation.values[3])):
        with pytest.raises(psycopg.OperationalError):
            cluster.connect(retired, old_password).close()
    with capsys.disabled():
        print(f"\n[db rotation, real PostgreSQL 15] 3 rotations, {client.opened} new connections, {len(client.failures)} failed")


def test_the_single_role_order_does_fail_new_connections(cluster):
    """The check can fail: changing the live role's password before the restart refuses connections."""
    first = new_db_password()
    cloud_sql_as_pulumi_leaves_it(cluster, first)
    with cluster.connect(OWNER, first) as conn:
        conn.execute("CREATE TABLE legacy (id int)")
    service = Service(OWNER, first)
    client = NewConnections(cluster, service)
    client.start()
    try:
        client.wait_for(3)
        new = new_db_password()
        cluster.admin(f"ALTER ROLE {OWNER} PASSWORD '{new}'")  # Cloud SQL first...
        client.wait_for(3)
        service.restart(OWNER, new)  # ...then the restart
        client.wait_for(3)
    finally:
        client.stop_flag.set()
        client.join(timeout=30)
    assert len(client.failures) >= 3 and "password authentication failed" in client.failures[0]


def run_vm_script(pg, tmp_path: Path, ca_pem: str, user: str, password: str, owner: str) -> subprocess.CompletedProcess:
    """The VM's one-shot script (infra.keys.db_roles.PSQL_SCRIPT) with the real psql, its two mounts
    under tmp_path and the test server's port in place of 5432."""
    kit, release = tmp_path / "kit", tmp_path / "release"
    for directory in (kit, release):
        directory.mkdir(exist_ok=True)
    (kit / "db-user").write_text(user)
    (kit / "db-password").write_text(password)
    (release / "server-ca.pem").write_text(ca_pem)
    script = db_roles.PSQL_SCRIPT.replace("/kit/", f"{kit}/").replace("/release/", f"{release}/").replace("PGPORT=5432", f"PGPORT={pg.port}")
    env = {"PATH": os.environ["PATH"], "PGDATABASE": DATABASE, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(["sh", "-c", script, "ensure-roles", "127.0.0.1"], input=db_roles.roles_sql(owner), env=env, capture_output=True, text=True, timeout=60)


def test_the_vm_script_sets_up_the_roles_over_verified_tls(tmp_path):
    tls_postgres = pytest.importorskip("tests.support.tls_postgres", reason="cryptography is missing: pip install -r requirements-dev.txt")
    ca, other = tls_postgres.CertificateAuthority("instance"), tls_postgres.CertificateAuthority("other")
    first = new_db_password()
    with tls_postgres.TlsPostgres(ca.server_certificate("acme-web-prod:acme-pg")) as pg:
        pg.sql("CREATE ROLE cloudsqlsuperuser NOLOGIN CREATEROLE CREATEDB")
        pg.sql(f"CREATE ROLE {OWNER} LOGIN CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser PASSWORD '{first}'")
        for login in db_roles.logins_of(OWNER):
            pg.sql(f"CREATE ROLE {login} LOGIN CREATEROLE CREATEDB IN ROLE cloudsqlsuperuser PASSWORD '{first}-{login}'")
        pg.sql(f"CREATE DATABASE {DATABASE} OWNER cloudsqlsuperuser")

        # Another instance's CA is refused: verify-ca checks the chain.
        refused = run_vm_script(pg, tmp_path, other.pem, OWNER, first, OWNER)
        assert refused.returncode != 0 and "certificate verify failed" in refused.stderr
        assert pg.sql("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = 'app'") == "0"

        done = run_vm_script(pg, tmp_path, ca.pem, OWNER, first, OWNER)
        assert done.returncode == 0, done.stderr
        members = pg.sql("SELECT string_agg(u.rolname, ',' ORDER BY u.rolname) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'app'")
        assert members == "app_a,app_b"
        assert pg.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "t"  # its own session is never locked out
        # Again as a login role, as the retire step runs it: now the owner cannot log in.
        again = run_vm_script(pg, tmp_path, ca.pem, "app_a", f"{first}-app_a", OWNER)
        assert again.returncode == 0, again.stderr
        assert pg.sql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") == "f"
        assert "role=app" in pg.sql("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'app_b'")
