"""The login roles' pure builders: which role comes next, which retire, the SQL, the VM command."""

from __future__ import annotations

import pytest

from infra.keys import db_roles
from infra.keys.database import DatabaseError, VmPsqlRoles
from infra.remote.vm import Vm


def test_the_login_roles_take_turns_and_the_owner_hands_over_to_the_first():
    assert db_roles.standby_login("app", "app") == "app_a"
    assert db_roles.standby_login("app", "app_a") == "app_b"
    assert db_roles.standby_login("app", "app_b") == "app_a"
    assert db_roles.retired_logins("app", "app_b") == ("app", "app_a")


def test_the_sql_grants_membership_before_the_session_role_and_never_locks_out_its_own_session():
    sql = db_roles.roles_sql("inngest")
    assert sql.index("GRANT inngest TO inngest_a, inngest_b;") < sql.index("ALTER ROLE inngest_a SET role = 'inngest';")
    assert "IF session_user <> 'inngest' THEN ALTER ROLE inngest NOLOGIN;" in sql
    assert "CREATE EXTENSION IF NOT EXISTS pgaudit" in sql
    with pytest.raises(ValueError):
        db_roles.roles_sql("app; DROP DATABASE app")


def test_the_vm_command_runs_psql_as_the_services_login_with_the_password_from_its_tmpfs():
    recorded = []
    roles = VmPsqlRoles(lambda argv, stdin: recorded.append((argv, stdin)), Vm(), "10.20.0.3")
    roles.ensure("inngest", "inngest", "inngest")
    (argv, stdin), = recorded
    assert argv == [
        "sudo", "-n", "docker", "run", "--rm", "-i", "--network", "host",
        "-v", "/run/inngest-kit/secrets/inngest:/kit:ro",
        "-e", "PGHOST=10.20.0.3", "-e", "PGDATABASE=inngest", "-e", "PGSSLMODE=require", "-e", "PGCONNECT_TIMEOUT=10",
        "--entrypoint", "sh", "postgres:15-alpine", "-c", db_roles.PSQL_SCRIPT,
    ]  # fmt: skip
    assert stdin == db_roles.roles_sql("inngest").encode()
    # No value in the argv: the script reads the user and the password from the mounted files.
    assert "PGPASSWORD=$(cat /kit/db-password)" in db_roles.PSQL_SCRIPT


def test_without_the_database_address_nothing_runs():
    with pytest.raises(DatabaseError, match="sql_private_ip"):
        VmPsqlRoles(lambda *a, **k: pytest.fail("ran"), Vm(), "").ensure("app", "app", "app")
