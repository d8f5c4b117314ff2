"""The OS Login POSIX user name, read from the login profile. The stand-in answers below follow the
LoginProfile / PosixAccount shape of the OS Login API v1 (google-api-python-client's bundled discovery
document googleapiclient/discovery_cache/documents/oslogin.v1.json; cloud.google.com/compute/docs/oslogin/rest/v1/users/getLoginProfile)."""

from __future__ import annotations

import json
from pathlib import Path

import googleapiclient
import pytest

from infra.components.access import OsLoginUserProvider
from infra.plan.evaluate import evaluate
from infra.remote.identity import IdentityReaders, Observed
from infra.remote.oslogin import LoginProfileError, posix_username
from tests.foundation.plan_helpers import example_raw, of_type, one

DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "oslogin.v1.json"


def profile(email: str, *accounts: dict) -> dict:
    return {
        "name": f"users/{email}",
        "posixAccounts": [
            {"primary": True, "uid": "2001", "gid": "2001", "homeDirectory": f"/home/{a['username']}", "shell": "/bin/bash",
             "gecos": "", "systemId": "", "accountId": "acme-web-prod", "operatingSystemType": "LINUX",
             "name": f"users/{email}/projects/acme-web-prod", **a}
            for a in accounts
        ],
        "sshPublicKeys": {"ab12": {"key": "ssh-ed25519 AAAA", "fingerprint": "ab12", "name": f"users/{email}/sshPublicKeys/ab12"}},
    }


def test_the_stand_in_answers_have_the_documented_shape():
    schemas = json.loads(DISCOVERY.read_text())["schemas"]
    answer = profile("ops@acme-example.com", {"username": "ops_acme_example_com"})
    assert set(answer) <= set(schemas["LoginProfile"]["properties"])
    assert set(answer["posixAccounts"][0]) <= set(schemas["PosixAccount"]["properties"])


@pytest.mark.parametrize(
    ("email", "username"),
    [
        ("ops@acme-example.com", "ops_acme_example_com"),  # an organization user
        ("contractor@gmail.com", "ext_contractor_gmail_com"),  # a user from outside the organization
        ("deployer@acme-web-prod.iam.gserviceaccount.com", "sa_113356289876315477120"),  # a service account: sa_<uniqueId>
    ],
)
def test_the_user_name_is_the_profiles_not_one_derived_from_the_email(email, username):
    assert posix_username(profile(email, {"username": username}), email) == username


def test_the_primary_linux_account_wins():
    answer = profile("ops@acme-example.com", {"username": "other", "primary": False}, {"username": "ops_acme_example_com"}, {"username": "win", "operatingSystemType": "WINDOWS"})
    assert posix_username(answer, "ops@acme-example.com") == "ops_acme_example_com"


def test_a_profile_without_a_posix_account_says_how_to_see_it():
    with pytest.raises(LoginProfileError, match="no POSIX account yet.*gcloud compute os-login describe-profile"):
        posix_username({"name": "users/x@y.com"}, "x@y.com")


def test_the_provider_reads_the_profile_of_the_deploy_identity_and_rereads_on_a_new_key():
    asked = []

    def read_profile(email, project):
        asked.append((email, project))
        return profile(email, {"username": "sa_113356289876315477120"})

    provider = OsLoginUserProvider(read_profile=read_profile)
    props = {"email": "deployer@acme-web-prod.iam.gserviceaccount.com", "project": "acme-web-prod", "key_fingerprint": "ab12"}
    created = provider.create(props)
    assert created.outs["username"] == "sa_113356289876315477120" and created.id == "users/deployer@acme-web-prod.iam.gserviceaccount.com"
    assert asked == [("deployer@acme-web-prod.iam.gserviceaccount.com", "acme-web-prod")]
    assert provider.diff("id", created.outs, {**props, "username": None}).changes is False
    assert provider.diff("id", created.outs, {**props, "key_fingerprint": "cd34"}).changes is True


def test_the_provider_refuses_to_read_with_adc_of_another_account():
    provider = OsLoginUserProvider(identity_readers=IdentityReaders(adc=lambda: Observed("someone@else.com")))
    with pytest.raises(ValueError, match=r"Application Default Credentials: they are someone@else.com, but .*ops@acme-example.com"):
        provider.create({"email": "ops@acme-example.com", "project": "acme-web-prod", "key_fingerprint": "ab12"})


def test_the_program_reads_the_name_after_the_key_import_and_ssh_user_overrides_it():
    plan = evaluate("example").document
    user = one(plan, "pulumi-python:dynamic/inngest-kit:OsLoginUser", "deploy-user")
    key = one(plan, "gcp:oslogin/sshPublicKey:SshPublicKey", "deploy-key")
    assert key["urn"] in user["depends_on"]
    deployment = one(plan, "pulumi-python:dynamic/inngest-kit:StackDeployment", "stack")
    assert user["urn"] in deployment["depends_on"]
    raw = example_raw()
    raw["inngest-kit:sshUser"] = "sa_113356289876315477120"
    overridden = evaluate("override", raw=raw).document
    assert of_type(overridden, "pulumi-python:dynamic/inngest-kit:OsLoginUser") == []
    assert one(overridden, "pulumi-python:dynamic/inngest-kit:StackDeployment", "stack")["inputs"]["user"] == "sa_113356289876315477120"
