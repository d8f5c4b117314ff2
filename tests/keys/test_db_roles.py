"""The login roles' pure builders: which role comes next, which retire, the SQL, the VM command."""

from __future__ import annotations

import subprocess

import pytest

from infra.keys import db_roles
from infra.keys.database import VmPsqlRoles
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


def test_the_vm_command_runs_psql_in_the_services_network_as_its_login_with_the_password_from_its_tmpfs():
    recorded = []
    roles = VmPsqlRoles(lambda argv, stdin: recorded.append((argv, stdin)), Vm(), "10.20.0.3")
    roles.ensure("inngest", "inngest", "inngest")
    (argv, stdin), = recorded
    assert argv == [
        "sudo", "-n", "docker", "run", "--rm", "-i", "--network", "container:kit-inngest-1",
        "-v", "/var/lib/inngest-kit/secrets/inngest:/kit:ro", "-v", "/srv/kit/current:/release:ro",
        "-e", "PGDATABASE=inngest", "-e", "PGCONNECT_TIMEOUT=10",
        "--entrypoint", "sh", "postgres:15-alpine", "-c", db_roles.PSQL_SCRIPT, "ensure-roles", "10.20.0.3",
    ]  # fmt: skip
    assert stdin == db_roles.roles_sql("inngest").encode()
    # No value in the argv: the script reads the user and the password from the mounted files.
    assert "PGPASSWORD=$(cat /kit/db-password)" in db_roles.PSQL_SCRIPT


def run_script(tmp_path, *, ca: bool, host: str) -> subprocess.CompletedProcess:
    """The script itself, with `psql` a recorder of its environment (tests only) and the mounts under tmp_path."""
    kit, release, bin_dir = tmp_path / "kit", tmp_path / "release", tmp_path / "bin"
    for directory in (kit, release, bin_dir):
        directory.mkdir()
    (kit / "db-user").write_text("app_b")
    (kit / "db-password").write_text("Pw-0123456789abcdef")
    if ca:
        (release / "server-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (bin_dir / "psql").write_text('#!/bin/sh\nenv | grep ^PG | sort\n')
    (bin_dir / "psql").chmod(0o755)
    script = db_roles.PSQL_SCRIPT.replace("/kit/", f"{kit}/").replace("/release/", f"{release}/")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(["sh", "-c", script, "ensure-roles", host], env=env, capture_output=True, text=True, timeout=30)


def test_the_script_verifies_the_instance_ca_when_the_release_ships_one(tmp_path):
    result = run_script(tmp_path, ca=True, host="10.20.0.3")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert seen["PGUSER"] == "app_b" and seen["PGHOST"] == "10.20.0.3" and seen["PGSSLMODE"] == "verify-ca"
    assert seen["PGSSLROOTCERT"].endswith("/release/server-ca.pem")


def test_the_script_goes_through_the_auth_proxy_when_the_release_has_no_ca(tmp_path):
    result = run_script(tmp_path, ca=False, host="")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert (seen["PGHOST"], seen["PGPORT"], seen["PGSSLMODE"]) == ("cloudsql-proxy", "5432", "disable")
    assert "PGSSLROOTCERT" not in seen


def test_a_direct_release_without_the_database_address_stops(tmp_path):
    result = run_script(tmp_path, ca=True, host="")
    assert result.returncode == 2 and "sql_private_ip" in result.stderr
