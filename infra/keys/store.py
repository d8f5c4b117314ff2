"""The Secret Manager edge: the only module that talks to the API. Thin: no decisions are made here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as api_exceptions
from google.protobuf import field_mask_pb2

from infra.keys.model import SecretState, VersionInfo

_STATE_NAMES = {1: "ENABLED", 2: "DISABLED", 3: "DESTROYED"}


class SecretStoreError(Exception):
    """A Secret Manager call failed; the message names the secret and the call, never a value."""


def version_annotation(number: int, field: str) -> str:
    """Annotation key for one version's audit data: versions have no labels of their own."""
    return f"kit-v{number}-{field}"


def _to_datetime(stamp) -> datetime | None:
    if stamp is None:
        return None
    if isinstance(stamp, datetime):
        return stamp
    return stamp.ToDatetime(tzinfo=None) if hasattr(stamp, "ToDatetime") else None


class SecretStore:
    def __init__(self, client, project: str):
        self._client = client
        self.project = project

    def secret_name(self, secret_id: str) -> str:
        return f"projects/{self.project}/secrets/{secret_id}"

    def _call(self, what: str, secret_id: str, function, **kwargs):
        try:
            return function(**kwargs)
        except api_exceptions.GoogleAPICallError as error:
            raise SecretStoreError(f"Secret Manager {what} on {secret_id} failed: {error.code.name if error.code else ''} {error.message}".strip()) from None

    def observe(self, logical: str, secret_id: str) -> SecretState:
        name = self.secret_name(secret_id)
        secret = self._call("GetSecret", secret_id, self._client.get_secret, name=name)
        versions = self._call("ListSecretVersions", secret_id, lambda **kw: list(self._client.list_secret_versions(**kw)), parent=name)
        infos = tuple(
            sorted(
                (VersionInfo(int(v.name.rsplit("/", 1)[1]), _STATE_NAMES.get(int(v.state), "UNKNOWN"), _as_naive(v.create_time)) for v in versions),
                key=lambda info: info.number,
                reverse=True,
            )
        )
        rotation = secret.rotation
        next_rotation = _as_naive(rotation.next_rotation_time) if rotation and "next_rotation_time" in rotation else None
        period = rotation.rotation_period if rotation and "rotation_period" in rotation else None
        if period is not None and not isinstance(period, timedelta):
            period = timedelta(seconds=period.seconds)
        return SecretState(
            logical=logical,
            secret_id=secret_id,
            versions=infos,
            aliases={alias: int(number) for alias, number in secret.version_aliases.items()},
            annotations=dict(secret.annotations),
            next_rotation=next_rotation,
            rotation_period=period,
        )

    def add_version(self, secret_id: str, value: str) -> int:
        version = self._call("AddSecretVersion", secret_id, self._client.add_secret_version, parent=self.secret_name(secret_id), payload={"data": value.encode()})
        return int(version.name.rsplit("/", 1)[1])

    def access(self, secret_id: str, number: int) -> str:
        response = self._call("AccessSecretVersion", secret_id, self._client.access_secret_version, name=f"{self.secret_name(secret_id)}/versions/{number}")
        return response.payload.data.decode()

    def update(
        self,
        secret_id: str,
        *,
        aliases: Mapping[str, int | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
        next_rotation: datetime | None = None,
    ) -> None:
        """Merges alias and annotation changes (None removes one) into the secret, guarded by its etag.

        `next_rotation` moves the rotation reminder, keeping the period the Pulumi program set.
        """
        name = self.secret_name(secret_id)
        secret = self._call("GetSecret", secret_id, self._client.get_secret, name=name)
        body: dict = {"name": name, "etag": secret.etag}
        paths = []
        if aliases is not None:
            body["version_aliases"] = _merge(dict(secret.version_aliases), aliases)
            paths.append("version_aliases")
        if annotations is not None:
            body["annotations"] = _merge(dict(secret.annotations), annotations)
            paths.append("annotations")
        if next_rotation is not None:
            body["rotation"] = {"next_rotation_time": next_rotation.replace(tzinfo=UTC), "rotation_period": secret.rotation.rotation_period}
            paths.append("rotation")
        if paths:
            self._call("UpdateSecret", secret_id, self._client.update_secret, secret=body, update_mask=field_mask_pb2.FieldMask(paths=paths))

    def disable(self, secret_id: str, number: int) -> None:
        self._call("DisableSecretVersion", secret_id, self._client.disable_secret_version, name=f"{self.secret_name(secret_id)}/versions/{number}")

    def enable(self, secret_id: str, number: int) -> None:
        self._call("EnableSecretVersion", secret_id, self._client.enable_secret_version, name=f"{self.secret_name(secret_id)}/versions/{number}")

    def destroy(self, secret_id: str, number: int) -> None:
        self._call("DestroySecretVersion", secret_id, self._client.destroy_secret_version, name=f"{self.secret_name(secret_id)}/versions/{number}")


def _merge(existing: dict, changes: Mapping) -> dict:
    for key, value in changes.items():
        if value is None:
            existing.pop(key, None)
        else:
            existing[key] = value
    return existing


def _as_naive(stamp) -> datetime | None:
    """UTC without tzinfo, like every time the planner compares."""
    value = _to_datetime(stamp)
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def clear_version_annotations(annotations: Mapping[str, str], numbers: Iterable[int]) -> dict[str, None]:
    prefixes = tuple(f"kit-v{n}-" for n in numbers)
    return {key: None for key in annotations if key.startswith(prefixes)}
