"""An in-process fake of the Secret Manager gRPC API, for the real `google-cloud-secret-manager` client.

It keeps the semantics the keys CLI relies on:
- `versions/latest` names the newest *created* version, whatever its state;
- a version alias (`versions/current`) resolves wherever a version name is accepted;
- a disabled or destroyed version cannot be accessed (FAILED_PRECONDITION), and a destroyed version's
  payload is gone for good;
- labels, annotations, aliases and rotation round-trip; UpdateSecret applies only the fields in its
  update_mask and refuses a stale etag (ABORTED).

Faults: `fail_next("AddSecretVersion", grpc.StatusCode.UNAVAILABLE, times=1)` makes the next call(s)
of that method fail before touching any state. `calls` lists every method called, in order.

    with FakeSecretManager() as fake:
        client = fake.client()          # a real SecretManagerServiceClient over 127.0.0.1
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.api_core import client_options
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1 import types
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import SecretManagerServiceGrpcTransport
from google.protobuf import empty_pb2, timestamp_pb2

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
State = types.SecretVersion.State


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        self.code = code
        self.message = message


@dataclass
class _StoredVersion:
    version: types.SecretVersion
    payload: bytes | None


@dataclass
class _StoredSecret:
    secret: types.Secret
    versions: list[_StoredVersion] = field(default_factory=list)
    etag_counter: int = 1


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class FakeSecretManager:
    def __init__(self):
        self._lock = threading.Lock()
        self._secrets: dict[str, _StoredSecret] = {}
        self._faults: dict[str, list] = {}
        self.calls: list[str] = []
        self._server: grpc.Server | None = None
        self.port: int | None = None
        self._channels: list[grpc.Channel] = []

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeSecretManager:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, self._handlers()),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None

    def client(self) -> secretmanager_v1.SecretManagerServiceClient:
        """A real client talking to this fake; retries off, so an injected fault reaches the caller."""
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._channels.append(channel)
        transport = SecretManagerServiceGrpcTransport(channel=channel, credentials=AnonymousCredentials())
        return secretmanager_v1.SecretManagerServiceClient(transport=transport, client_options=client_options.ClientOptions())

    # --- test controls ----------------------------------------------------------------------------

    def fail_next(self, method: str, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, *, times: int = 1) -> None:
        with self._lock:
            self._faults[method] = [code, times]

    def version_states(self, secret_name: str) -> dict[int, str]:
        with self._lock:
            stored = self._secrets[secret_name]
            return {int(v.version.name.rsplit("/", 1)[1]): State(v.version.state).name for v in stored.versions}

    def payload(self, secret_name: str, number: int) -> bytes | None:
        """The stored bytes of a version (None once destroyed), for assertions."""
        with self._lock:
            return self._secrets[secret_name].versions[number - 1].payload

    # --- dispatch ---------------------------------------------------------------------------------

    def _handlers(self) -> dict:
        table = {
            "CreateSecret": (types.CreateSecretRequest, types.Secret, self._create_secret),
            "GetSecret": (types.GetSecretRequest, types.Secret, self._get_secret),
            "UpdateSecret": (types.UpdateSecretRequest, types.Secret, self._update_secret),
            "DeleteSecret": (types.DeleteSecretRequest, None, self._delete_secret),
            "ListSecrets": (types.ListSecretsRequest, types.ListSecretsResponse, self._list_secrets),
            "AddSecretVersion": (types.AddSecretVersionRequest, types.SecretVersion, self._add_version),
            "GetSecretVersion": (types.GetSecretVersionRequest, types.SecretVersion, self._get_version),
            "ListSecretVersions": (types.ListSecretVersionsRequest, types.ListSecretVersionsResponse, self._list_versions),
            "AccessSecretVersion": (types.AccessSecretVersionRequest, types.AccessSecretVersionResponse, self._access_version),
            "EnableSecretVersion": (types.EnableSecretVersionRequest, types.SecretVersion, self._enable_version),
            "DisableSecretVersion": (types.DisableSecretVersionRequest, types.SecretVersion, self._disable_version),
            "DestroySecretVersion": (types.DestroySecretVersionRequest, types.SecretVersion, self._destroy_version),
        }
        handlers = {}
        for method, (request_type, response_type, function) in table.items():
            serializer = empty_pb2.Empty.SerializeToString if response_type is None else response_type.serialize
            handlers[method] = grpc.unary_unary_rpc_method_handler(
                self._wrap(method, function, response_type),
                request_deserializer=request_type.deserialize,
                response_serializer=serializer,
            )
        return handlers

    def _wrap(self, method: str, function, response_type):
        def handle(request, context):
            with self._lock:
                self.calls.append(method)
                fault = self._faults.get(method)
                if fault:
                    fault[1] -= 1
                    if fault[1] <= 0:
                        del self._faults[method]
                    context.abort(fault[0], f"injected fault in {method}")
                try:
                    result = function(request)
                except _Abort as abort:
                    context.abort(abort.code, abort.message)
            return empty_pb2.Empty() if response_type is None else result

        return handle

    # --- helpers ----------------------------------------------------------------------------------

    def _secret(self, name: str) -> _StoredSecret:
        stored = self._secrets.get(name)
        if stored is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return stored

    def _resolve(self, version_name: str) -> tuple[_StoredSecret, _StoredVersion]:
        secret_name, _, reference = version_name.partition("/versions/")
        stored = self._secret(secret_name)
        if reference == "latest":
            if not stored.versions:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret_name}] not found or has no versions.")
            return stored, stored.versions[-1]
        if reference.isdigit():
            number = int(reference)
        elif reference in stored.secret.version_aliases:
            number = stored.secret.version_aliases[reference]
        else:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{version_name}] not found.")
        if not 1 <= number <= len(stored.versions):
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{version_name}] not found.")
        return stored, stored.versions[number - 1]

    @staticmethod
    def _touch(stored: _StoredSecret) -> None:
        stored.etag_counter += 1
        stored.secret.etag = f'"e{stored.etag_counter}"'

    @staticmethod
    def _check_etag(given: str, actual: str) -> None:
        if given and given != actual:
            raise _Abort(grpc.StatusCode.ABORTED, f"etag {given} does not match the current {actual}")

    # --- secrets ----------------------------------------------------------------------------------

    def _create_secret(self, request: types.CreateSecretRequest) -> types.Secret:
        name = f"{request.parent}/secrets/{request.secret_id}"
        if name in self._secrets:
            raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
        secret = types.Secret(request.secret)
        secret.name = name
        secret.create_time = _now()
        stored = _StoredSecret(secret)
        self._touch(stored)
        self._secrets[name] = stored
        return secret

    def _get_secret(self, request: types.GetSecretRequest) -> types.Secret:
        return self._secret(request.name).secret

    def _update_secret(self, request: types.UpdateSecretRequest) -> types.Secret:
        stored = self._secret(request.secret.name)
        paths = list(request.update_mask.paths)
        if not paths:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "update_mask must name at least one field")
        self._check_etag(request.secret.etag, stored.secret.etag)
        allowed = {"labels", "annotations", "version_aliases", "rotation", "topics", "expire_time", "ttl", "version_destroy_ttl"}
        for path in paths:
            if path not in allowed:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"field {path!r} cannot be updated")
        if "version_aliases" in paths:
            for alias, number in request.secret.version_aliases.items():
                if not 1 <= number <= len(stored.versions):
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"alias {alias!r} names version {number}, which does not exist")
        for path in paths:
            setattr(stored.secret, path, getattr(request.secret, path))
        self._touch(stored)
        return stored.secret

    def _delete_secret(self, request: types.DeleteSecretRequest) -> None:
        stored = self._secret(request.name)
        self._check_etag(request.etag, stored.secret.etag)
        del self._secrets[request.name]

    def _list_secrets(self, request: types.ListSecretsRequest) -> types.ListSecretsResponse:
        prefix = f"{request.parent}/secrets/"
        found = [stored.secret for name, stored in sorted(self._secrets.items()) if name.startswith(prefix)]
        return types.ListSecretsResponse(secrets=found, total_size=len(found))

    # --- versions ---------------------------------------------------------------------------------

    def _add_version(self, request: types.AddSecretVersionRequest) -> types.SecretVersion:
        stored = self._secret(request.parent)
        number = len(stored.versions) + 1
        version = types.SecretVersion(name=f"{request.parent}/versions/{number}", create_time=_now(), state=State.ENABLED, etag=f'"v{number}-1"')
        stored.versions.append(_StoredVersion(version, bytes(request.payload.data)))
        return version

    def _get_version(self, request: types.GetSecretVersionRequest) -> types.SecretVersion:
        return self._resolve(request.name)[1].version

    def _list_versions(self, request: types.ListSecretVersionsRequest) -> types.ListSecretVersionsResponse:
        if request.filter:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "the fake does not implement list filters")
        stored = self._secret(request.parent)
        # Newest first, as the real service lists them.
        versions = [entry.version for entry in reversed(stored.versions)]
        return types.ListSecretVersionsResponse(versions=versions, total_size=len(versions))

    def _access_version(self, request: types.AccessSecretVersionRequest) -> types.AccessSecretVersionResponse:
        _, entry = self._resolve(request.name)
        state = entry.version.state
        if state != State.ENABLED:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{entry.version.name}] is in {State(state).name} state.")
        return types.AccessSecretVersionResponse(name=entry.version.name, payload=types.SecretPayload(data=entry.payload))

    def _set_state(self, name: str, etag: str, state: State) -> types.SecretVersion:
        _, entry = self._resolve(name)
        version = entry.version
        self._check_etag(etag, version.etag)
        if version.state == State.DESTROYED:
            raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{version.name}] is in DESTROYED state.")
        version.state = state
        if state == State.DESTROYED:
            version.destroy_time = _now()
            entry.payload = None
        counter = int(version.etag.strip('"').rsplit("-", 1)[1]) + 1
        version.etag = f'"{version.etag.strip(chr(34)).rsplit("-", 1)[0]}-{counter}"'
        return version

    def _enable_version(self, request: types.EnableSecretVersionRequest) -> types.SecretVersion:
        return self._set_state(request.name, request.etag, State.ENABLED)

    def _disable_version(self, request: types.DisableSecretVersionRequest) -> types.SecretVersion:
        return self._set_state(request.name, request.etag, State.DISABLED)

    def _destroy_version(self, request: types.DestroySecretVersionRequest) -> types.SecretVersion:
        return self._set_state(request.name, request.etag, State.DESTROYED)
