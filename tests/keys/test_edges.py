"""The production edges of the keys CLI, up to where they would leave this machine."""

from __future__ import annotations

import pytest

from infra.keys import cli
from infra.keys.database import CloudSqlUsers, DatabaseError


def test_missing_google_credentials_are_refused_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))

    with pytest.raises(cli.Refused) as refused:
        cli._secret_client({"project": "acme-web-prod"})

    assert refused.value.problems == ["Google credentials: none found. Fix: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS"]


def test_a_stack_whose_outputs_cannot_be_read_is_refused(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(cli.Refused) as refused:
        cli._load_outputs("prod")

    assert "pulumi is not installed" in refused.value.problems[0]


def test_the_operator_comes_from_the_environment_first(monkeypatch):
    monkeypatch.setenv(cli.OPERATOR_ENV, "ops@acme-example.com")
    assert cli._operator() == "ops@acme-example.com"
    monkeypatch.delenv(cli.OPERATOR_ENV)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli._operator() is None


class RecordingSqlAdmin:
    """Recording fake of the sqladmin v1 discovery resource: users().update and operations().get."""

    def __init__(self, operations):
        self.operations_left = list(operations)
        self.calls = []

    def users(self):
        return self

    def operations(self):
        return self

    def update(self, **kwargs):
        self.calls.append(("users.update", kwargs))
        return self

    def get(self, **kwargs):
        self.calls.append(("operations.get", kwargs))
        return self

    def execute(self):
        return self.operations_left.pop(0)


def test_cloud_sql_password_update_waits_for_its_operation():
    admin = RecordingSqlAdmin([{"name": "op-1", "status": "PENDING"}, {"name": "op-1", "status": "RUNNING"}, {"name": "op-1", "status": "DONE"}])
    sleeps = []

    CloudSqlUsers("acme-web-prod", service=admin, sleep=sleeps.append).set_password("acme-pg", "app", "New-password-1")

    assert admin.calls[0] == ("users.update", {"project": "acme-web-prod", "instance": "acme-pg", "name": "app", "body": {"name": "app", "password": "New-password-1"}})
    assert admin.calls[1:] == [("operations.get", {"project": "acme-web-prod", "operation": "op-1"})] * 2
    assert len(sleeps) == 2


def test_cloud_sql_errors_never_carry_the_password():
    admin = RecordingSqlAdmin([{"name": "op-1", "status": "DONE", "error": {"errors": [{"code": "INVALID_PASSWORD"}]}}])

    with pytest.raises(DatabaseError) as error:
        CloudSqlUsers("acme-web-prod", service=admin, sleep=lambda s: None).set_password("acme-pg", "app", "New-password-1")

    assert "INVALID_PASSWORD" in str(error.value) and "New-password-1" not in str(error.value)


def test_cloud_sql_operation_that_never_finishes_is_bounded():
    admin = RecordingSqlAdmin([{"name": "op-1", "status": "RUNNING"}] * 4)

    with pytest.raises(DatabaseError, match="did not finish"):
        CloudSqlUsers("acme-web-prod", service=admin, polls=3, sleep=lambda s: None).set_password("acme-pg", "app", "New-password-1")


def test_the_real_sqladmin_client_builds_offline():
    from google.auth.credentials import AnonymousCredentials

    users = CloudSqlUsers("acme-web-prod", AnonymousCredentials())
    request = users._service.users().update(project="acme-web-prod", instance="acme-pg", name="app", body={"name": "app", "password": "x"})
    assert request.method == "PUT"
    assert request.uri.startswith("https://sqladmin.googleapis.com/v1/projects/acme-web-prod/instances/acme-pg/users?")
