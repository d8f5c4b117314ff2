"""One identity for every edge: the pure comparison, the gcloud edge against a recording stand-in
for `gcloud` on PATH, the ADC edge against a stand-in for google.auth.default, and the operator
commands end to end (stand-ins for `pulumi` and `gcloud` on PATH): a clear refusal, never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import google.auth
import pytest
from google.auth.exceptions import DefaultCredentialsError

from infra import cli
from infra.remote.identity import GcloudState, Observed, identity_problems, read_adc, read_gcloud

ME = "ops@acme-example.com"
SA = "deployer@acme-web-prod.iam.gserviceaccount.com"

GCLOUD = """#!{python}
# Stand-in for `gcloud` (tests only): records argv, answers from answers.json by the joined argv.
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
answers = json.load(open(os.path.join(here, "answers.json")))
stdout, code = answers.get(" ".join(sys.argv[1:]), ["", 0])
sys.stdout.write(stdout)
sys.exit(code)
"""
ACTIVE = "auth list --filter=status:ACTIVE --format=value(account)"
ALL = "auth list --format=value(account)"
IMPERSONATION = "config get-value auth/impersonate_service_account"


def install_gcloud(directory: Path, answers: dict) -> Path:
    directory.mkdir(exist_ok=True)
    program = directory / "gcloud"
    program.write_text(GCLOUD.format(python=sys.executable))
    program.chmod(0o755)
    (directory / "answers.json").write_text(json.dumps(answers))
    return directory


def calls(directory: Path) -> list[list[str]]:
    log = directory / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- the comparison ---------------------------------------------------------------------------


def test_agreeing_edges_have_no_problem():
    assert identity_problems(ME, gcloud=GcloudState(Observed(ME)), adc=Observed(ME.upper()), env={}) == []


def test_gcloud_as_another_known_account_is_fixed_by_selecting_it():
    problems = identity_problems(ME, gcloud=GcloudState(Observed("me@gmail.com"), known_accounts=("me@gmail.com", ME)), adc=None, env={})
    assert problems == [f"gcloud: the IAP tunnel would run as me@gmail.com, but the deploy key and its roles belong to {ME} (the Pulumi provider's identity). Fix: `gcloud config set account {ME}`"]


def test_gcloud_without_the_account_is_fixed_by_logging_in_and_a_service_account_by_activating_it():
    assert identity_problems(ME, gcloud=GcloudState(Observed("me@gmail.com")), adc=None, env={})[0].endswith(f"Fix: `gcloud auth login {ME}` (then gcloud uses it)")
    assert f"`gcloud auth activate-service-account {SA} --key-file=KEY.json`" in identity_problems(SA, gcloud=GcloudState(Observed(problem="no active account")), adc=None, env={})[0]


def test_gcloud_impersonating_another_account_is_named():
    problems = identity_problems(ME, gcloud=GcloudState(Observed(ME), impersonating=SA), adc=None, env={})
    assert problems == [f"gcloud: the IAP tunnel would run as {SA} (impersonated), but the deploy key and its roles belong to {ME} (the Pulumi provider's identity). Fix: `gcloud config unset auth/impersonate_service_account`"]


def test_missing_or_other_adc_name_the_login_command_and_a_credentials_file_in_the_way():
    missing = identity_problems(ME, gcloud=None, adc=Observed(problem="missing"), env={})
    assert missing == [f"Application Default Credentials: none found; the VM's host keys and the OS Login profile are read with them. Fix: `gcloud auth application-default login` and sign in as {ME}"]
    other = identity_problems(SA, gcloud=None, adc=Observed(ME), env={"GOOGLE_APPLICATION_CREDENTIALS": "/keys/old.json"})
    assert other == [
        f"Application Default Credentials: they are {ME}, but the deploy key and its roles belong to {SA} (the Pulumi provider's identity). "
        f"Fix: `gcloud auth application-default login --impersonate-service-account {SA}` (or `export GOOGLE_APPLICATION_CREDENTIALS=KEY.json` with a key of {SA}) "
        "(GOOGLE_APPLICATION_CREDENTIALS is set to /keys/old.json: change or unset it)"
    ]


# --- the edges -----------------------------------------------------------------------------------


def test_gcloud_edge_reads_the_active_account_and_impersonation_with_exact_commands(tmp_path, monkeypatch):
    standins = install_gcloud(tmp_path / "bin", {ACTIVE: [f"{ME}\n", 0], IMPERSONATION: ["(unset)\n", 0], ALL: [f"{ME}\nme@gmail.com\n", 0]})
    monkeypatch.setenv("PATH", f"{standins}:/usr/bin:/bin")
    assert read_gcloud() == GcloudState(Observed(ME), None, (ME, "me@gmail.com"))
    assert calls(standins) == [ACTIVE.split(), IMPERSONATION.split(), ALL.split()]


def test_gcloud_edge_without_gcloud_or_a_login(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert read_gcloud().active.problem == "not-installed"
    standins = install_gcloud(tmp_path / "bin", {})
    monkeypatch.setenv("PATH", f"{standins}:/usr/bin:/bin")
    assert read_gcloud().active.problem == "no active account"


class ServiceAccountCredentials:
    service_account_email = SA


class UserCredentials:
    pass


def test_adc_edge():
    def missing(scopes):
        raise DefaultCredentialsError("Your default credentials were not found.")

    assert read_adc(default=missing) == Observed(problem="missing")
    assert read_adc(default=lambda scopes: (ServiceAccountCredentials(), "p")) == Observed(SA)
    assert read_adc(default=lambda scopes: (UserCredentials(), "p"), userinfo=lambda credentials: ME) == Observed(ME)

    def offline(credentials):
        raise OSError("network unreachable")

    assert read_adc(default=lambda scopes: (UserCredentials(), "p"), userinfo=offline).problem.startswith("cannot tell which account they are (OSError")


# --- the operator commands, end to end -------------------------------------------------------------

OUTPUTS = {
    "project": "acme-web-prod", "zone": "us-central1-a", "vm_name": "acme-vm", "ssh_via": "iap", "ssh_user": "ops_acme_example_com",
    "ssh_user_email": ME, "ssh_private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    "secret_ids": {}, "url": "https://app.acme-example.com",
}


@pytest.fixture
def operator_machine(tmp_path, monkeypatch):
    standins = install_gcloud(tmp_path / "bin", {ACTIVE: [f"{ME}\n", 0], ALL: [f"{ME}\n", 0]})
    pulumi = standins / "pulumi"
    pulumi.write_text(f"#!/bin/sh\n# Stand-in for `pulumi` (tests only)\ncat {tmp_path / 'outputs.json'}\n")
    pulumi.chmod(0o755)
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    monkeypatch.setenv("PATH", f"{standins}:/usr/bin:/bin")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)

    def no_adc(*args, **kwargs):
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    return standins


@pytest.mark.parametrize("argv", [["status"], ["logs"], ["ssh"], ["audit"]])
def test_operator_commands_without_adc_stop_at_once_with_the_fix_and_no_traceback(argv, operator_machine, capsys, ssh_stats):
    assert cli.main([*argv, "--stack", "prod"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: the VM cannot be reached as one Google identity:\n"
        f"  - Application Default Credentials: none found; the VM's host keys and the OS Login profile are read with them. Fix: `gcloud auth application-default login` and sign in as {ME}\n"
    )
    assert ssh_stats.connection_attempts == 0


def test_operator_commands_with_gcloud_as_another_account_stop_before_the_tunnel(operator_machine, monkeypatch, capsys, ssh_stats):
    install_gcloud(operator_machine, {ACTIVE: ["me@gmail.com\n", 0], ALL: [f"me@gmail.com\n{ME}\n", 0]})
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (ServiceAccountCredentials(), "p"))
    assert cli.main(["status", "--stack", "prod"]) == 2
    err = capsys.readouterr().err
    assert f"Fix: `gcloud config set account {ME}`" in err and f"they are {SA}" in err and "Traceback" not in err
    assert ssh_stats.connection_attempts == 0


def test_keys_commands_refuse_the_same_way(operator_machine, capsys):
    assert cli.main(["keys", "status", "--stack", "prod"]) == 2
    err = capsys.readouterr().err
    assert "gcloud auth application-default login" in err and "Traceback" not in err
