"""Two login roles per database that take turns, so a password rotation fails no new connection.

PostgreSQL keeps one password per role. Changing the password of the role a service logs in as
refuses every connection the service opens between the change and its restart on the new value.
So each database has:
- an owner role (`app`, `inngest`: the user the first version of the kit logged in as), which owns
  every object and, once no service logs in as it, cannot log in (NOLOGIN);
- two login roles (`app_a`, `app_b`), members of the owner, each with `ALTER ROLE … SET role = owner`,
  so a session of either acts as the owner and whatever it creates belongs to the owner.
A rotation sets the new password on the login role no service uses, switches the service to it
(the versions file names the live login role), and only then retires the old role by giving it a
password nobody holds. `tests/keys/test_db_roles_postgres.py` proves it against a real PostgreSQL 15.

On Cloud SQL the login roles are created by the Pulumi program (gcp.sql.User); users created that way
have CREATEROLE and are members of cloudsqlsuperuser (Cloud SQL docs, "About PostgreSQL users and
roles"), so the live login role can run the SQL below. PostgreSQL 15 lets a CREATEROLE role grant
membership in any non-superuser role; 16 asks for ADMIN OPTION on it instead.
Pure: SQL text and argv, no I/O.
"""

from __future__ import annotations

import re

from infra import naming
from infra.render import SERVER_CA_FILE, SQL_PORT
from infra.sql_proxy import PROXY_PORT, PROXY_SERVICE

# The client that runs the SQL on the VM: the official image's psql.
PSQL_IMAGE = "postgres:15-alpine"
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _role(name: str) -> str:
    if not _ROLE_RE.match(name):
        raise ValueError(f"{name!r} is not a role name the kit uses (lower-case letters, digits, _)")
    return name


def logins_of(owner: str) -> tuple[str, ...]:
    return naming.db_login_roles(owner)


def standby_login(owner: str, live: str) -> str:
    """The login role to bring in: the other one of the pair (the first when the owner itself is live)."""
    first, second = logins_of(owner)
    return second if live == first else first


def retired_logins(owner: str, live: str) -> tuple[str, ...]:
    """Every role of the database that may log in, except the live one: each gets a password nobody holds."""
    return tuple(role for role in (owner, *logins_of(owner)) if role != live)


def roles_sql(owner: str) -> str:
    """Idempotent: membership, the session role of each login role, the owner's NOLOGIN once no
    service logs in as it (the session's own user is never locked out), pgaudit where enabled."""
    owner = _role(owner)
    logins = [_role(name) for name in logins_of(owner)]
    statements = [f"GRANT {owner} TO {', '.join(logins)};"]
    statements += [f"ALTER ROLE {login} SET role = '{owner}';" for login in logins]
    statements.append(
        "DO $kit$ BEGIN\n"
        f"  IF session_user <> '{owner}' THEN ALTER ROLE {owner} NOLOGIN; END IF;\n"
        # CIS 6.2.8: pgaudit's DDL triggers need the extension in each database (Cloud SQL pgaudit docs).
        "  IF current_setting('cloudsql.enable_pgaudit', true) = 'on' THEN CREATE EXTENSION IF NOT EXISTS pgaudit; END IF;\n"
        "END $kit$;"
    )
    return "\n".join(statements) + "\n"


# Runs where the service runs (in its network namespace), so it reaches the database exactly as the
# service does: directly, verifying the instance's CA shipped in the release, or through the Cloud
# SQL Auth Proxy on the stack's network when the release has no CA (infra/sql_proxy.py). The live
# login and its password come from the service's own tmpfs directory (fetch-secrets.sh writes
# db-user and db-password there): no value in an argv or a host environment; PGPASSWORD lives only
# inside the one-shot container.
PSQL_SCRIPT = f"""set -eu
PGUSER=$(cat /kit/db-user)
PGPASSWORD=$(cat /kit/db-password)
if [ -f /release/{SERVER_CA_FILE} ]; then
	[ -n "$1" ] || {{ echo "no database address (stack output sql_private_ip)" >&2; exit 2; }}
	PGHOST=$1 PGPORT={SQL_PORT} PGSSLMODE=verify-ca PGSSLROOTCERT=/release/{SERVER_CA_FILE}
else
	PGHOST={PROXY_SERVICE} PGPORT={PROXY_PORT} PGSSLMODE=disable
fi
export PGUSER PGPASSWORD PGHOST PGPORT PGSSLMODE
[ -z "${{PGSSLROOTCERT:-}}" ] || export PGSSLROOTCERT
exec psql -X -q -v ON_ERROR_STOP=1 -f -
"""


def service_container(compose_project: str, service: str) -> str:
    """Compose v2 names a service's first container <project>-<service>-1 (the kit sets no container_name)."""
    return f"{compose_project}-{service}-1"


def ensure_roles_command(docker: tuple[str, ...], container: str, secrets_dir: str, release_dir: str, host: str, database: str) -> list[str]:
    """argv that runs roles_sql (given on stdin) as the service's live login role."""
    return [
        *docker, "run", "--rm", "-i", "--network", f"container:{container}",
        "-v", f"{secrets_dir}:/kit:ro", "-v", f"{release_dir}:/release:ro",
        "-e", f"PGDATABASE={database}", "-e", "PGCONNECT_TIMEOUT=10",
        "--entrypoint", "sh", PSQL_IMAGE, "-c", PSQL_SCRIPT, "ensure-roles", host,
    ]  # fmt: skip
