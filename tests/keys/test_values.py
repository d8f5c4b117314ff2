"""New values: the format each consumer needs, and fingerprints instead of values."""

from __future__ import annotations

import hashlib
import itertools
import string

import pytest

from infra.keys.values import fingerprint, new_db_password, new_event_key, new_signing_key, value_problem


def test_signing_key_is_32_random_bytes_as_bare_hex():
    assert new_signing_key(lambda n: bytes(range(n))) == bytes(range(32)).hex()
    key = new_signing_key()
    assert len(key) == 64 and set(key) <= set("0123456789abcdef")
    assert value_problem("signing", key) is None
    assert new_signing_key() != key


@pytest.mark.parametrize("bad", ["signkey-prod-" + "ab" * 32, "abc", "AB" * 32, "ab" * 8])
def test_signing_key_problems_are_named_without_the_value(bad):
    problem = value_problem("signing", bad)
    assert problem is not None and bad not in problem


def test_event_key_is_url_safe_without_commas():
    key = new_event_key()
    assert len(key) == 40 and key.isalnum() and "," not in key
    assert value_problem("event", key) is None
    assert value_problem("event", "abc,def" * 6) is not None
    assert value_problem("event", "a/b" * 12) is not None


def test_db_password_has_every_class_is_url_safe_and_starts_with_a_letter():
    for _ in range(50):
        password = new_db_password()
        assert len(password) == 32 and password[0].isalpha()
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(c in "-_" for c in password)
        assert set(password) <= set(string.ascii_letters + string.digits + "-_")
        assert value_problem("db", password) is None


def test_db_password_draws_again_until_every_class_is_present():
    # The first draw is all "a" (no upper case, digit or symbol); the second cycles through every class.
    draws = itertools.chain(["a"] * 32, itertools.cycle(["B", "c", "7", "-"]))
    password = new_db_password(lambda alphabet: next(draws))
    assert password.startswith("B") and {"B", "c", "7", "-"} <= set(password)


def test_db_password_gives_up_on_a_broken_random_source():
    with pytest.raises(RuntimeError, match="random source"):
        new_db_password(lambda alphabet: "a")


def test_fingerprint_is_the_first_8_hex_of_sha256():
    assert fingerprint("secret") == hashlib.sha256(b"secret").hexdigest()[:8]
    assert fingerprint(b"secret") == fingerprint("secret")
