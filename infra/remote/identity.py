"""One Google identity for every edge that reaches the VM, checked before anything waits.

The edges authenticate separately: the IAM grants and the OS Login key belong to the Pulumi
provider's identity (`gcp.organizations.get_client_open_id_user_info`, the `ssh_user_email`
output); the IAP tunnel runs as gcloud's active account; the host keys, the OS Login profile and
Secret Manager are read with Application Default Credentials (ADC). When they differ, the tunnel
or the login is refused and a retry loop only hides it, so this module compares them first and
names the exact command that makes them agree. The comparison is pure; reading gcloud's account
and ADC's are thin edges, replaceable in tests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

GCLOUD_ACTIVE_ACCOUNT = ["gcloud", "auth", "list", "--filter=status:ACTIVE", "--format=value(account)"]
GCLOUD_ACCOUNTS = ["gcloud", "auth", "list", "--format=value(account)"]
GCLOUD_IMPERSONATION = ["gcloud", "config", "get-value", "auth/impersonate_service_account"]
ADC_SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email")
# The endpoint terraform-provider-google's google_client_openid_userinfo asks, so ADC's answer is
# comparable with the provider's.
USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"


class IdentityError(Exception):
    """The edges would run as different identities, or one has no credential; lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Observed:
    """What one edge would run as: an email, or why it cannot tell."""

    email: str | None = None
    problem: str | None = None  # "missing" (no credential at all), or a sentence
    detail: str = ""  # e.g. an impersonated account, or GOOGLE_APPLICATION_CREDENTIALS


@dataclass(frozen=True)
class GcloudState:
    active: Observed
    impersonating: str | None = None
    known_accounts: tuple[str, ...] = ()


def is_service_account(email: str) -> bool:
    return email.endswith(".gserviceaccount.com")


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _gcloud_login(expected: str) -> str:
    if is_service_account(expected):
        return f"`gcloud auth activate-service-account {expected} --key-file=KEY.json` (or `gcloud config set auth/impersonate_service_account {expected}`)"
    return f"`gcloud auth login {expected}`"


def _adc_login(expected: str) -> str:
    if is_service_account(expected):
        return (f"`gcloud auth application-default login --impersonate-service-account {expected}` "
                f"(or `export GOOGLE_APPLICATION_CREDENTIALS=KEY.json` with a key of {expected})")
    return f"`gcloud auth application-default login` and sign in as {expected}"


def identity_problems(expected: str | None, *, gcloud: GcloudState | None, adc: Observed | None, env: dict | None = None) -> list[str]:
    """Every disagreement between the edges in use (None: that edge is not used), each with its fix.

    `expected` is the Pulumi provider's identity; when unknown, ADC's (else gcloud's) is taken as it.
    """
    env = os.environ if env is None else env
    if expected is None:
        expected = (adc.email if adc else None) or (gcloud.active.email if gcloud else None)
    owner = f"the deploy key and its roles belong to {expected} (the Pulumi provider's identity)" if expected else ""
    problems: list[str] = []
    if gcloud is not None:
        effective = gcloud.impersonating or gcloud.active.email
        if gcloud.active.problem == "not-installed":
            problems.append("gcloud: not installed; the IAP tunnel runs `gcloud compute start-iap-tunnel`. "
                            "Fix: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then "
                            + (_gcloud_login(expected) if expected else "`gcloud auth login`"))
        elif gcloud.active.problem:
            problems.append(f"gcloud: {gcloud.active.problem}. Fix: " + (_gcloud_login(expected) if expected else "`gcloud auth login`"))
        elif expected and effective and not _same(effective, expected):
            if gcloud.impersonating:
                fix = "`gcloud config unset auth/impersonate_service_account`" + ("" if _same(gcloud.active.email or "", expected) else f", then `gcloud config set account {expected}`")
                if is_service_account(expected):
                    fix = f"`gcloud config set auth/impersonate_service_account {expected}`"
                problems.append(f"gcloud: the IAP tunnel would run as {gcloud.impersonating} (impersonated), but {owner}. Fix: {fix}")
            else:
                known = any(_same(account, expected) for account in gcloud.known_accounts)
                fix = f"`gcloud config set account {expected}`" if known else f"{_gcloud_login(expected)} (then gcloud uses it)"
                problems.append(f"gcloud: the IAP tunnel would run as {effective}, but {owner}. Fix: {fix}")
    if adc is not None:
        pointer = env.get("GOOGLE_APPLICATION_CREDENTIALS")
        note = f" (GOOGLE_APPLICATION_CREDENTIALS is set to {pointer}: change or unset it)" if pointer else ""
        if adc.problem == "missing":
            problems.append("Application Default Credentials: none found; the VM's host keys and the OS Login profile are read with them. Fix: "
                            + (_adc_login(expected) if expected else "`gcloud auth application-default login`") + note)
        elif adc.problem:
            problems.append(f"Application Default Credentials: {adc.problem}. Fix: " + (_adc_login(expected) if expected else "`gcloud auth application-default login`") + note)
        elif expected and adc.email and not _same(adc.email, expected):
            problems.append(f"Application Default Credentials: they are {adc.email}, but {owner}. Fix: {_adc_login(expected)}{note}")
    return problems


# --- the edges ---------------------------------------------------------------------------------


def _gcloud_lines(argv: list[str], run: Callable[..., subprocess.CompletedProcess]) -> list[str]:
    completed = run(argv, capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        last = (completed.stderr or "").strip().splitlines()[-1:]
        raise RuntimeError(last[0] if last else f"exit status {completed.returncode}")
    return [line.strip() for line in (completed.stdout or "").splitlines() if line.strip() and line.strip() != "(unset)"]


def read_gcloud(*, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> GcloudState:
    """gcloud's active account (what `gcloud compute start-iap-tunnel` runs as) and any impersonation."""
    try:
        active = _gcloud_lines(GCLOUD_ACTIVE_ACCOUNT, run)
        impersonating = _gcloud_lines(GCLOUD_IMPERSONATION, run)
        known = _gcloud_lines(GCLOUD_ACCOUNTS, run)
    except FileNotFoundError:
        return GcloudState(Observed(problem="not-installed"))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
        return GcloudState(Observed(problem=f"`gcloud auth list` failed ({error})"))
    if not active:
        return GcloudState(Observed(problem="no active account"), known_accounts=tuple(known))
    return GcloudState(Observed(active[0]), impersonating[0] if impersonating else None, tuple(known))


def _userinfo_email(credentials) -> str | None:
    from google.auth.transport.requests import AuthorizedSession

    response = AuthorizedSession(credentials).get(USERINFO_URL, timeout=15)
    response.raise_for_status()
    return response.json().get("email")


def read_adc(*, default: Callable | None = None, userinfo: Callable | None = None) -> Observed:
    """The account Application Default Credentials act as; Observed(problem="missing") without any."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    default = default or google.auth.default
    userinfo = userinfo or _userinfo_email
    try:
        credentials, _ = default(scopes=list(ADC_SCOPES))
    except DefaultCredentialsError:
        return Observed(problem="missing")
    email = getattr(credentials, "service_account_email", None)
    if email and email != "default":
        return Observed(email)
    try:
        email = userinfo(credentials)
    except Exception as error:  # HTTP errors too: say what happened, never a traceback
        return Observed(problem=f"cannot tell which account they are ({type(error).__name__}: {error})")
    return Observed(email) if email else Observed(problem="they carry no email (log in with the userinfo.email scope)")


@dataclass
class IdentityReaders:
    """The edges, for tests to replace."""

    gcloud: Callable[[], GcloudState] = read_gcloud
    adc: Callable[[], Observed] = read_adc


def require_one_identity(expected: str | None, *, uses_gcloud: bool, uses_adc: bool, readers: IdentityReaders | None = None) -> None:
    """Raise IdentityError, with the fixing command, unless every edge in use runs as `expected`."""
    readers = readers or IdentityReaders()
    gcloud = readers.gcloud() if uses_gcloud else None
    adc = readers.adc() if uses_adc else None
    problems = identity_problems(expected, gcloud=gcloud, adc=adc)
    if problems:
        raise IdentityError(problems)
