"""Names shared by the Pulumi program, the rendered files and the operator commands.

One place, so that the deploy, the key rotation and the tunnel agree on what things are called.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import StackConfig

# Logical secret names (keys of the `secret_ids` stack output) for the kit's own secrets.
SIGNING_KEY = "inngest-signing-key"
EVENT_KEY = "inngest-event-key"
DB_APP_PASSWORD = "db-app-password"
DB_INNGEST_PASSWORD = "db-inngest-password"
REDIS_PASSWORD = "redis-password"  # what Inngest logs in to Redis with
KIT_SECRETS = (SIGNING_KEY, EVENT_KEY, DB_APP_PASSWORD, DB_INNGEST_PASSWORD, REDIS_PASSWORD)
# The read token of a private registry (not Artifact Registry), when `app.registry` is set.
REGISTRY_TOKEN = "registry-token"

# The VM reads secret versions through these aliases, never through `latest`, which names the
# newest *created* version even when it is disabled. The keys CLI moves them during a rotation.
CURRENT_ALIAS = "current"
PREVIOUS_ALIAS = "previous"

APP_DB_NAME = "app"
APP_DB_USER = "app"
INNGEST_DB_NAME = "inngest"
INNGEST_DB_USER = "inngest"
# Each database's user above is the role that owns its objects. The services log in as one of two
# login roles that take turns across password rotations (infra/keys/db_roles.py explains why).
DB_LOGIN_SUFFIXES = ("a", "b")


def db_login_roles(owner: str) -> tuple[str, ...]:
    """The two login roles of a database's owner role: `app_a`, `app_b` for `app`."""
    return tuple(f"{owner}_{suffix}" for suffix in DB_LOGIN_SUFFIXES)


def app_secret_logical(env_name: str) -> str:
    """Logical name of an app secret: `app-stripe-key` for STRIPE_KEY."""
    return "app-" + env_name.lower().replace("_", "-")


@dataclass(frozen=True)
class Names:
    """Cloud resource names derived from the stack's prefix."""

    prefix: str

    def secret_id(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    @property
    def vm(self) -> str:
        return f"{self.prefix}-vm"

    @property
    def sql_instance(self) -> str:
        return f"{self.prefix}-pg"


def names_for(config: StackConfig) -> Names:
    return Names(config.name)


def logical_secrets(config: StackConfig) -> tuple[str, ...]:
    """Every logical secret the stack holds, the kit's own first."""
    registry = (REGISTRY_TOKEN,) if config.app.registry_username else ()
    return KIT_SECRETS + tuple(app_secret_logical(name) for name in config.app.secrets) + registry
