"""The Secret Manager edge against the fake: what it observes, what it writes, how it fails."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from infra.keys.store import SecretStore, SecretStoreError
from tests.support.fake_secretmanager import FakeSecretManager


@pytest.fixture
def store():
    with FakeSecretManager() as fake:
        client = fake.client()
        secret = client.create_secret(parent="projects/acme-web-prod", secret_id="acme-key", secret={"replication": {"automatic": {}}})
        client.add_secret_version(parent=secret.name, payload={"data": b"first-value"})
        yield fake, SecretStore(client, "acme-web-prod")


def test_observe_reads_versions_aliases_annotations_and_the_rotation_schedule(store):
    fake, secrets = store
    number = secrets.add_version("acme-key", "second-value")
    secrets.disable("acme-key", 1)
    secrets.update("acme-key", aliases={"current": 2}, annotations={"kit-v2-created-by": "ops@acme-example.com"})
    fake.client().update_secret(
        secret={"name": "projects/acme-web-prod/secrets/acme-key", "rotation": {"next_rotation_time": datetime(2027, 2, 1), "rotation_period": timedelta(days=90)}},
        update_mask=field_mask_pb2.FieldMask(paths=["rotation"]),
    )

    state = secrets.observe("inngest-event-key", "acme-key")

    assert number == 2
    assert [(v.number, v.state) for v in state.versions] == [(2, "ENABLED"), (1, "DISABLED")]
    assert state.aliases == {"current": 2} and state.current == 2
    assert state.annotations == {"kit-v2-created-by": "ops@acme-example.com"}
    assert state.next_rotation == datetime(2027, 2, 1) and state.rotation_period == timedelta(days=90)
    assert secrets.access("acme-key", 2) == "second-value"


def test_update_merges_and_none_removes(store):
    _, secrets = store
    secrets.update("acme-key", annotations={"a": "1", "b": "2"})
    secrets.update("acme-key", annotations={"a": None, "c": "3"}, aliases={"current": 1})

    state = secrets.observe("x", "acme-key")
    assert state.annotations == {"b": "2", "c": "3"} and state.aliases == {"current": 1}


def test_errors_name_the_call_and_the_secret_never_a_value(store):
    fake, secrets = store
    fake.fail_next("AddSecretVersion", grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(SecretStoreError) as error:
        secrets.add_version("acme-key", "a-value-that-must-not-leak")

    assert "AddSecretVersion on acme-key" in str(error.value)
    assert "a-value-that-must-not-leak" not in str(error.value)
    with pytest.raises(SecretStoreError, match="DISABLED"):
        secrets.disable("acme-key", 1)
        secrets.access("acme-key", 1)
