"""The cost estimate comes from the price file, item by item."""

from __future__ import annotations

import copy

import pytest

from infra.config import parse_config
from infra.plan.cost import KNOWN_AFTER_DEPLOY, estimate, load_prices
from tests.foundation.plan_helpers import example_raw


@pytest.fixture
def config():
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": "[secret]"}
    return parse_config(raw)


def by_resource(cost):
    return {item["resource"]: item for item in cost["items"]}


def test_every_price_names_its_source_and_date():
    for key, entry in load_prices()["prices"].items():
        assert entry["source"] and entry["as_of"], key


def test_items_follow_the_config_and_the_price_file(config):
    prices = load_prices()
    items = by_resource(estimate(config, prices))
    assert items["vm"]["usd_month"] == prices["prices"]["machine.e2-small"]["usd_month"]
    assert items["data disk"]["usd_month"] == round(20 * prices["prices"]["disk.pd-balanced.gb"]["usd_month"], 2)
    assert items["Secret Manager"]["usd_month"] == round(6 * 0.06, 2)  # 5 kit secrets (signing, event, 2 db, redis) + 1 app secret
    assert items["Cloud SQL backups"]["usd_month"] == KNOWN_AFTER_DEPLOY


def test_total_is_the_sum_of_known_items_and_moves_with_a_price(config):
    prices = load_prices()
    cost = estimate(config, prices)
    known = [i["usd_month"] for i in cost["items"] if isinstance(i["usd_month"], float | int)]
    assert cost["total_usd_month"] == pytest.approx(sum(known), abs=0.02)
    dearer = copy.deepcopy(prices)
    dearer["prices"]["sql.db-f1-micro"]["usd_month"] += 10
    assert estimate(config, dearer)["total_usd_month"] == pytest.approx(cost["total_usd_month"] + 10, abs=0.01)


def test_custom_tier_is_priced_by_cpu_and_memory():
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {}
    raw["inngest-kit:database"] = {"tier": "db-custom-2-7680"}
    sql = by_resource(estimate(parse_config(raw), load_prices()))["Cloud SQL"]
    assert sql["usd_month"] == round(2 * 30.15 + 7.5 * 5.11, 2)


def test_an_adopted_instance_is_not_billed_to_this_stack():
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {}
    raw["inngest-kit:database"] = {"existingInstance": "shared-pg"}
    items = by_resource(estimate(parse_config(raw), load_prices()))
    assert items["Cloud SQL"]["usd_month"] == 0
    assert "Cloud SQL storage" not in items


def test_a_machine_type_without_a_price_is_known_after_deploy():
    raw = example_raw()
    raw["inngest-kit:appSecrets"] = {}
    raw["inngest-kit:vm"] = {"machineType": "n2-standard-2"}
    assert by_resource(estimate(parse_config(raw), load_prices()))["vm"]["usd_month"] == KNOWN_AFTER_DEPLOY
