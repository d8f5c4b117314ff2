"""The POSIX user name OS Login gives an account, read from its login profile (never derived).

OS Login names organization users `user_domain_tld`, users from outside the organization `ext_…`,
and service accounts `sa_<uniqueId>`; only the login profile knows which. The profile is the OS
Login API's `users.getLoginProfile` (GET v1/users/{user}/loginProfile?projectId=…), a LoginProfile
whose `posixAccounts[]` carry `username`, `primary` and `operatingSystemType`: see the discovery
document google-api-python-client ships, googleapiclient/discovery_cache/documents/oslogin.v1.json
(schemas LoginProfile, PosixAccount), and https://cloud.google.com/compute/docs/oslogin/rest/v1/users/getLoginProfile.
pulumi-gcp's `oslogin.SshPublicKey` outputs only expirationTimeUsec, fingerprint, key, project and
user (sdk/python/pulumi_gcp/oslogin/ssh_public_key.py), so the profile is read here, after the import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class LoginProfileError(Exception):
    """The login profile could not be read, or holds no POSIX account to log in as."""


def posix_username(profile: Mapping[str, Any], email: str) -> str:
    """The user name of the profile's primary Linux POSIX account (else its only or first one)."""
    accounts = [
        account for account in profile.get("posixAccounts") or ()
        if account.get("username") and account.get("operatingSystemType", "LINUX") in ("LINUX", "OPERATING_SYSTEM_TYPE_UNSPECIFIED")
    ]
    if not accounts:
        raise LoginProfileError(
            f"the OS Login profile of {email} has no POSIX account yet: it is made when an SSH key is imported, "
            "so the deploy key's import must come first. Check with `gcloud compute os-login describe-profile`, "
            "or set sshUser to the name it shows."
        )
    primary = [account for account in accounts if account.get("primary")]
    return str((primary or accounts)[0]["username"])


def api_login_profile(email: str, project: str, *, credentials=None) -> Mapping[str, Any]:
    """The real read: OS Login API v1 with Application Default Credentials (cannot run without GCP)."""
    import google.auth
    from googleapiclient import discovery
    from googleapiclient.errors import HttpError

    if credentials is None:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    service = discovery.build("oslogin", "v1", credentials=credentials, cache_discovery=False, static_discovery=True)
    try:
        return service.users().getLoginProfile(name=f"users/{email}", projectId=project).execute()
    except HttpError as error:
        raise LoginProfileError(
            f"the OS Login profile of {email} could not be read ({error.status_code}: {error.reason}). "
            "It is read with Application Default Credentials, which must be that same account: "
            "`gcloud auth application-default login`."
        ) from None


def read_posix_username(email: str, project: str, *, read_profile: Callable[[str, str], Mapping[str, Any]] = api_login_profile) -> str:
    return posix_username(read_profile(email, project), email)
