"""How the rendered stack reaches Cloud SQL: directly with the instance's CA, or through the Cloud SQL
Auth Proxy (an adopted instance with only a public IP). Pure rendering; the real drivers are in
test_database_tls.py, the program's choice in tests/foundation/test_adopt.py."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from infra.render import RenderError, RenderInputs, render_stack, services_restarted_by
from infra.sql_proxy import PROXY_IMAGE, PROXY_SERVICE
from tests.render.conftest import config_from, example_raw, inputs_for
from tests.render.test_compose import SCHEMA

CONNECTION_NAME = "acme-web-prod:us-central1:shared-pg"


@pytest.fixture
def proxied():
    config = config_from(example_raw())
    base = inputs_for(config)
    return render_stack(config, RenderInputs(project=base.project, sql_private_ip="", secrets=base.secrets, sql_proxy_instance=CONNECTION_NAME))


def test_the_proxy_stack_is_valid_compose_and_follows_the_stack_rules(proxied):
    compose = yaml.safe_load(proxied["docker-compose.yml"])
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(compose)) == []
    proxy = compose["services"][PROXY_SERVICE]
    assert proxy["image"] == PROXY_IMAGE and proxy["restart"] == "unless-stopped"
    assert proxy["logging"] == compose["services"]["app"]["logging"]
    assert "ports" not in proxy and "volumes" not in proxy


def test_through_the_proxy_no_ca_file_is_shipped_or_mounted(proxied):
    assert "server-ca.pem" not in proxied
    assert "postgres://${db_user}:${db_password}@cloudsql-proxy:5432/app?sslmode=disable" in proxied["with-secrets.sh"]


def test_direct_mounts_the_ca_into_both_clients_and_a_new_ca_restarts_them(files):
    compose = yaml.safe_load(files["docker-compose.yml"])
    for client in ("app", "inngest"):
        assert "/srv/kit/current/server-ca.pem:/kit/server-ca.pem:ro" in compose["services"][client]["volumes"]
    assert "server-ca.pem" not in str(compose["services"]["caddy"]) + str(compose["services"]["redis"])
    assert services_restarted_by("server-ca.pem") == ("app", "inngest")


def test_a_direct_connection_without_the_instance_ca_is_refused(config, inputs):
    # Never a URL that cannot verify the server: no CA, no render.
    with pytest.raises(RenderError, match="inputs.server_ca_pem: is not a PEM certificate"):
        render_stack(config, RenderInputs(project=inputs.project, sql_private_ip="10.20.0.3", secrets=inputs.secrets))
    with pytest.raises(RenderError, match="inputs.sql_proxy_instance: 'shared-pg' is not a Cloud SQL connection name"):
        render_stack(config, RenderInputs(project=inputs.project, sql_private_ip="", secrets=inputs.secrets, sql_proxy_instance="shared-pg"))
