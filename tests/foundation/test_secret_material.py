"""No secret in a resource ID or in a plain output, proven from the program's registrations.

Under mocks the IDs are whatever the mocks return, so the proof is structural: every type that
produces secret material is in the committed table infra/secret_material.py (which outputs its
provider marks secret, what its ID is, and the source file that says so), no registered type has an
ID derived from its value, the SDK asks the engine to mark the tabled outputs secret, the values
those outputs carry reach other resources only as secrets, and no plain stack output holds one.
"""

from __future__ import annotations

import json

import pytest

from infra.plan.evaluate import SECRET, evaluate
from infra.secret_material import SECRET_MATERIAL, must_be_tabled


@pytest.fixture(scope="module")
def result():
    return evaluate("example")


def secret_producers(result):
    return [r for r in result.registrations if r.custom and must_be_tabled(r.type, r.secret_outputs)]


def test_every_type_that_produces_secret_material_is_in_the_committed_table(result):
    producers = secret_producers(result)
    assert {r.type for r in producers} >= {"random:index/randomPassword:RandomPassword", "gcp:secretmanager/secretVersion:SecretVersion"}
    missing = sorted({r.type for r in producers} - set(SECRET_MATERIAL))
    assert not missing, f"add these types to infra/secret_material.py, with their provider's source: {missing}"


def test_no_secret_producing_resource_has_an_id_derived_from_its_value(result):
    offenders = sorted(f"{r.name} ({r.type}: ID is {SECRET_MATERIAL[r.type].id_rule})" for r in secret_producers(result) if SECRET_MATERIAL[r.type].id_from_value)
    assert not offenders, offenders


def test_the_sdk_asks_the_engine_to_mark_every_tabled_output_secret(result):
    for registration in secret_producers(result):
        tabled = set(SECRET_MATERIAL[registration.type].secret_outputs)
        assert tabled <= set(registration.secret_outputs), registration.name


def test_no_generated_value_is_any_resource_id(result):
    # The mocks return the IDs the providers return (the table's id_rule), so a generator whose ID
    # is its value shows up here too.
    generated = set(result.generated_secrets)
    assert len(generated) >= 8
    assert not [r.name for r in result.registrations if r.id in generated or any(value in r.id for value in generated)]


def test_secret_outputs_reach_other_resources_only_as_secrets(result):
    document = json.dumps(result.document["resources"])
    leaked = [value[:4] + "…" for value in result.generated_secrets if value in document]
    assert not leaked
    # And they do reach their consumers: every initial version and database user holds one, masked.
    consumers = [r for r in result.document["resources"] if r["type"] in ("gcp:secretmanager/secretVersion:SecretVersion", "gcp:sql/user:User")]
    for consumer in consumers:
        field = "secretData" if "secretVersion" in consumer["type"] else "password"
        assert consumer["inputs"][field] == SECRET, consumer["name"]


def test_no_plain_stack_output_holds_secret_material(result):
    outputs = result.document["outputs"]
    plain = json.dumps({key: value for key, value in outputs.items() if value != SECRET})
    assert not [value[:4] + "…" for value in result.generated_secrets if value in plain]
    # The deploy key is secret material: the one output derived from it is a Pulumi secret.
    assert outputs["ssh_private_key"] == SECRET


def test_the_table_refuses_the_generators_whose_id_is_their_value():
    # pulumi-random's RandomBytes marks its outputs secret but still computes its ID from the value.
    assert SECRET_MATERIAL["random:index/randomBytes:RandomBytes"].id_from_value
    assert SECRET_MATERIAL["random:index/randomId:RandomId"].id_from_value
    assert not SECRET_MATERIAL["random:index/randomPassword:RandomPassword"].id_from_value
    assert all(entry.source for entry in SECRET_MATERIAL.values())


def test_a_replaced_generator_puts_no_new_value_into_service(result):
    # Upgrading from RandomId replaces the generators, so their values change. Every resource that
    # carries a kit value into service ignores that change: Pulumi neither adds nor replaces a
    # version, nor resets a database password; only the keys CLI puts a value into service.
    carriers = [r for r in result.document["resources"] if r["type"] in ("gcp:secretmanager/secretVersion:SecretVersion", "gcp:sql/user:User")]
    kit = [r for r in carriers if not r["name"].startswith("app-")]
    assert len(kit) == 5 + 6  # signing, event, two database passwords, redis; six database users
    for resource in kit:
        field = "secretData" if "secretVersion" in resource["type"] else "password"
        assert field in resource["options"]["ignore_changes"], resource["name"]
