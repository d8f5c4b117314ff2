"""Fixtures of the keys CLI tests: a deployed stack on the session's real sshd."""

from __future__ import annotations

import pytest

from tests.support.keys_stack import build_stack


@pytest.fixture
def keys_stack(sshd, tmp_path):
    stack = build_stack(sshd, tmp_path / "work")
    try:
        yield stack
    finally:
        stack.stop()
