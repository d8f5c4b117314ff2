"""A connection cut while logging in is a lost connection, not a refused key (real sshd, FlakyProxy).

paramiko raises `AuthenticationException("Authentication failed: transport shut down or saw EOF")`
when the transport dies during authentication; before this fix the SSH layer reported that as
"refused the deploy key", sending the operator to check OS Login for a key that was never refused.
"""

from __future__ import annotations

import pytest

from infra.remote.ssh import SshAuthenticationError, SshConnectionError, connect
from tests.support.sshd import generate_ed25519

# Client->server byte counts to cut at: from the banner, through key exchange, to the end of login.
# The exact offsets of each phase vary with the negotiated algorithms, so the sweep covers them all.
CUT_POINTS = range(0, 2400, 40)


def test_a_cut_at_any_point_of_the_handshake_is_never_reported_as_a_refused_key(sshd, flaky_proxy):
    said = {}
    for cut in CUT_POINTS:
        proxy = flaky_proxy(sshd.port, cut_after_bytes=cut)
        try:
            connect(sshd.target(port=proxy.port), attempts=1).close()
            said[cut] = "connected"
        except SshAuthenticationError as error:
            pytest.fail(f"a cut after {cut} bytes was reported as a refused key: {error}")
        except SshConnectionError as error:
            said[cut] = str(error)
        proxy.stop()
    during_login = [cut for cut, text in said.items() if "lost during login" in text]
    assert during_login, f"no cut fell during login; widen CUT_POINTS: {said}"
    assert "connected" in said.values(), "no cut came late enough to let the login finish"
    for cut in during_login:
        assert "refused" not in said[cut]


def test_a_key_the_server_does_not_know_is_still_reported_as_refused(sshd):
    stranger = generate_ed25519("not-authorized").private_openssh
    with pytest.raises(SshAuthenticationError, match="refused the deploy key"):
        connect(sshd.target(private_key=stranger), attempts=1)
