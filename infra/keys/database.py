"""The Cloud SQL edge: setting a database user's password through the Cloud SQL Admin API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class DatabaseUsers(Protocol):
    def set_password(self, instance: str, user: str, password: str) -> None: ...


class DatabaseError(Exception):
    """The Admin API refused or did not finish; the message never holds the password."""


class CloudSqlUsers:
    """`users.update` of the sqladmin v1 API (google-api-python-client), waiting for its operation."""

    def __init__(self, project: str, credentials=None, *, service=None, polls: int = 60, interval: float = 2.0, sleep: Callable[[float], None] = time.sleep):
        if service is None:
            from googleapiclient import discovery  # imported here: only this edge needs it

            # static_discovery: the API description ships with the library, so no fetch at start.
            service = discovery.build("sqladmin", "v1", credentials=credentials, static_discovery=True, cache_discovery=False)
        self._service = service
        self.project = project
        self._polls = polls
        self._interval = interval
        self._sleep = sleep

    def set_password(self, instance: str, user: str, password: str) -> None:
        from googleapiclient.errors import HttpError

        try:
            operation = (
                self._service.users()
                .update(project=self.project, instance=instance, name=user, body={"name": user, "password": password})
                .execute()
            )
            for _ in range(self._polls):
                if operation.get("status") == "DONE":
                    if operation.get("error"):
                        raise DatabaseError(f"Cloud SQL refused the new password of user {user!r} on {instance}: {operation['error']}")
                    return
                self._sleep(self._interval)
                operation = self._service.operations().get(project=self.project, operation=operation["name"]).execute()
        except HttpError as error:
            raise DatabaseError(f"Cloud SQL Admin API users.update for {user!r} on {instance} failed with HTTP {error.resp.status}") from None
        raise DatabaseError(f"Cloud SQL did not finish updating user {user!r} on {instance} within {self._polls * self._interval:.0f} s")


class DatabaseRoles(Protocol):
    def ensure(self, service: str, owner: str, database: str) -> None: ...


class VmPsqlRoles:
    """Runs infra.keys.db_roles.roles_sql on the VM, as the service's live login role, in a one-shot
    psql container inside the service's network namespace (the only place that reaches the database)."""

    def __init__(self, run: Callable[..., object], vm, host: str):
        self._run = run  # VmLink.run: (argv, stdin=bytes)
        self._vm = vm
        self.host = host  # Cloud SQL's private IP; unused when the release goes through the Auth Proxy

    def ensure(self, service: str, owner: str, database: str) -> None:
        from infra.keys.db_roles import ensure_roles_command, roles_sql, service_container

        vm = self._vm
        container = service_container(vm.compose_project, service)
        argv = ensure_roles_command(vm.tools.docker, container, f"{vm.paths.secrets}/{service}", vm.paths.current, self.host, database)
        self._run(argv, stdin=roles_sql(owner).encode())
