"""New secret values and their fingerprints. Pure apart from the randomness, which is injectable."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
# Unreserved in URLs (RFC 3986), so a password drops into DATABASE_URL without escaping.
PASSWORD_SYMBOLS = "-_"
SIGNING_KEY_RE = re.compile(r"^(?:[0-9a-f]{2})+$")
EVENT_KEY_RE = re.compile(r"^[A-Za-z0-9]+$")
EVENT_KEY_LENGTH = 40  # ~238 bits
PASSWORD_LENGTH = 32  # ~190 bits; Cloud SQL accepts up to 128 characters
_PASSWORD_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits, PASSWORD_SYMBOLS)
_PASSWORD_DRAWS = 200


def fingerprint(value: str | bytes) -> str:
    """What we show instead of a value: the first 8 hex characters of its sha256."""
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:8]


def new_signing_key(token_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """32 random bytes as 64 bare hex characters: the server hex-decodes the key and rejects prefixes."""
    return token_bytes(32).hex()


def new_event_key(choice: Callable[[str], str] = secrets.choice) -> str:
    """Letters and digits only: the key travels in the URL (`/e/{key}`) and lists are comma-separated."""
    return "".join(choice(ALNUM) for _ in range(EVENT_KEY_LENGTH))


def new_db_password(choice: Callable[[str], str] = secrets.choice) -> str:
    """Strong and URL-safe, with every character class, so Cloud SQL's complexity policy accepts it."""
    alphabet = ALNUM + PASSWORD_SYMBOLS
    # A letter first: some tools read a leading '-' as an option. A draw lacks a class about a third
    # of the time, so a few draws suffice; the bound only guards against a broken `choice`.
    for _ in range(_PASSWORD_DRAWS):
        password = choice(string.ascii_letters) + "".join(choice(alphabet) for _ in range(PASSWORD_LENGTH - 1))
        if all(any(ch in character_class for ch in password) for character_class in _PASSWORD_CLASSES):
            return password
    raise RuntimeError(f"no password with every character class in {_PASSWORD_DRAWS} draws; is the random source broken?")


def value_problem(kind: str, value: str) -> str | None:
    """Why a value cannot serve as a key of this kind, or None. Never quotes the value."""
    if kind == "signing":
        if not SIGNING_KEY_RE.match(value):
            return "is not bare lower-case hex of even length (the Inngest server hex-decodes it; no 'signkey-' prefix)"
        if len(value) < 64:
            return f"is {len(value) // 2} bytes; use at least 32"
    elif kind == "event":
        if not EVENT_KEY_RE.match(value):
            return "contains characters other than letters and digits (it travels in URLs and comma-separated lists)"
        if len(value) < 32:
            return "is shorter than 32 characters"
    elif kind in ("db", "redis"):
        if len(value) < 16 or len(value) > 128:
            return "must be 16 to 128 characters long"
        if any(ch not in ALNUM + PASSWORD_SYMBOLS for ch in value):
            return "contains characters that need escaping in a connection URL"
    return None


# Redis's password goes into inngest's --redis-uri, so it needs the same URL-safe alphabet.
GENERATORS: dict[str, Callable[[], str]] = {"signing": new_signing_key, "event": new_event_key, "db": new_db_password, "redis": new_db_password}
