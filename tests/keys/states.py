"""Builders of observed Secret Manager states for the pure planner tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from infra import naming
from infra.keys.model import SecretState, VersionInfo

T0 = datetime(2026, 11, 1, 12, 0, 0)


def secret(logical: str, states: dict[int, str], aliases: dict[str, int] | None = None, annotations: dict[str, str] | None = None, **extra) -> SecretState:
    versions = tuple(VersionInfo(number, state, T0 + timedelta(days=number)) for number, state in sorted(states.items(), reverse=True))
    return SecretState(logical, f"acme-{logical}", versions, dict(aliases or {}), dict(annotations or {}), **extra)


def fresh_secrets() -> dict[str, SecretState]:
    """As Pulumi leaves them: one enabled version each, no alias."""
    return {logical: secret(logical, {1: "ENABLED"}) for logical in naming.KIT_SECRETS}


def files(signing=(1,), fallback=(), event=(1,), event_keys=(1,), app_login="app", app_db=(1,), inngest_login="inngest", inngest_db=(1,), redis=(1,), redis_accepted=(1,)) -> dict[str, tuple]:
    return {
        "INNGEST_SIGNING_KEY": tuple(signing),
        "INNGEST_SIGNING_KEY_FALLBACK": tuple(fallback),
        "INNGEST_EVENT_KEY": tuple(event),
        "INNGEST_EVENT_KEYS": tuple(event_keys),
        "DB_APP_LOGIN": (app_login,),
        "DB_APP_PASSWORD": tuple(app_db),
        "DB_INNGEST_LOGIN": (inngest_login,),
        "DB_INNGEST_PASSWORD": tuple(inngest_db),
        "REDIS_PASSWORD": tuple(redis),
        "REDIS_PASSWORDS": tuple(redis_accepted),
    }
