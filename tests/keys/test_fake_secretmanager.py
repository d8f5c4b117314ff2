"""The fake keeps Secret Manager's semantics, as seen through the real client."""

from __future__ import annotations

import grpc
import pytest
from google.api_core import exceptions
from google.protobuf import field_mask_pb2

from tests.support.fake_secretmanager import FakeSecretManager

PARENT = "projects/acme-web-prod"


@pytest.fixture
def sm():
    with FakeSecretManager() as fake:
        client = fake.client()
        secret = client.create_secret(parent=PARENT, secret_id="key", secret={"replication": {"automatic": {}}, "labels": {"team": "web"}})
        client.add_secret_version(parent=secret.name, payload={"data": b"one"})
        client.add_secret_version(parent=secret.name, payload={"data": b"two"})
        yield fake, client, secret.name


def test_latest_is_the_newest_created_version_even_when_disabled(sm):
    fake, client, name = sm
    client.disable_secret_version(name=f"{name}/versions/2")

    assert client.get_secret_version(name=f"{name}/versions/latest").name.endswith("/versions/2")
    with pytest.raises(exceptions.FailedPrecondition, match="DISABLED"):
        client.access_secret_version(name=f"{name}/versions/latest")
    assert client.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"


def test_a_disabled_version_comes_back_when_enabled(sm):
    _, client, name = sm
    client.disable_secret_version(name=f"{name}/versions/1")
    client.enable_secret_version(name=f"{name}/versions/1")
    assert client.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"


def test_a_destroyed_version_is_gone_for_good(sm):
    fake, client, name = sm
    destroyed = client.destroy_secret_version(name=f"{name}/versions/1")

    assert destroyed.state.name == "DESTROYED" and destroyed.destroy_time
    assert fake.payload(name, 1) is None
    with pytest.raises(exceptions.FailedPrecondition, match="DESTROYED"):
        client.access_secret_version(name=f"{name}/versions/1")
    with pytest.raises(exceptions.FailedPrecondition):
        client.enable_secret_version(name=f"{name}/versions/1")


def test_aliases_resolve_wherever_a_version_is_named(sm):
    _, client, name = sm
    secret = client.get_secret(name=name)
    client.update_secret(secret={"name": name, "version_aliases": {"current": 1}, "etag": secret.etag}, update_mask=field_mask_pb2.FieldMask(paths=["version_aliases"]))

    assert client.access_secret_version(name=f"{name}/versions/current").payload.data == b"one"
    assert client.get_secret_version(name=f"{name}/versions/current").name.endswith("/versions/1")
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{name}/versions/previous")
    with pytest.raises(exceptions.InvalidArgument):
        client.update_secret(secret={"name": name, "version_aliases": {"current": 9}}, update_mask=field_mask_pb2.FieldMask(paths=["version_aliases"]))


def test_update_applies_only_the_masked_fields_and_labels_and_annotations_round_trip(sm):
    _, client, name = sm
    client.update_secret(
        secret={"name": name, "labels": {"team": "changed"}, "annotations": {"kit-v2-created-by": "ops@acme-example.com"}},
        update_mask=field_mask_pb2.FieldMask(paths=["annotations"]),
    )

    secret = client.get_secret(name=name)
    assert dict(secret.labels) == {"team": "web"}
    assert dict(secret.annotations) == {"kit-v2-created-by": "ops@acme-example.com"}
    with pytest.raises(exceptions.InvalidArgument):
        client.update_secret(secret={"name": name, "labels": {}}, update_mask=field_mask_pb2.FieldMask(paths=[]))


def test_a_stale_etag_is_refused(sm):
    _, client, name = sm
    stale = client.get_secret(name=name).etag
    client.update_secret(secret={"name": name, "annotations": {"a": "1"}}, update_mask=field_mask_pb2.FieldMask(paths=["annotations"]))

    with pytest.raises(exceptions.Aborted):
        client.update_secret(secret={"name": name, "annotations": {"a": "2"}, "etag": stale}, update_mask=field_mask_pb2.FieldMask(paths=["annotations"]))
    assert dict(client.get_secret(name=name).annotations) == {"a": "1"}


def test_versions_list_newest_first_and_missing_things_are_not_found(sm):
    _, client, name = sm
    assert [v.name.rsplit("/", 1)[1] for v in client.list_secret_versions(parent=name)] == ["2", "1"]
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=f"{PARENT}/secrets/nope")
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"{name}/versions/7")
    with pytest.raises(exceptions.AlreadyExists):
        client.create_secret(parent=PARENT, secret_id="key", secret={"replication": {"automatic": {}}})


def test_injected_faults_fail_the_next_calls_and_change_nothing(sm):
    fake, client, name = sm
    fake.fail_next("AddSecretVersion", grpc.StatusCode.UNAVAILABLE, times=1)

    with pytest.raises(exceptions.ServiceUnavailable):
        client.add_secret_version(parent=name, payload={"data": b"three"})
    assert fake.version_states(name) == {1: "ENABLED", 2: "ENABLED"}
    client.add_secret_version(parent=name, payload={"data": b"three"})
    assert fake.version_states(name) == {1: "ENABLED", 2: "ENABLED", 3: "ENABLED"}
