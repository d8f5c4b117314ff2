"""Monthly cost estimate per billable resource, from one data file of list prices (pure)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from infra.config import CUSTOM_TIER_RE, StackConfig
from infra.naming import logical_secrets

PRICES_FILE = Path(__file__).with_name("prices.json")
KNOWN_AFTER_DEPLOY = "known after deploy"


@dataclass(frozen=True)
class CostItem:
    resource: str
    description: str
    usd_month: float | None  # None: depends on usage, known after deploy
    price_key: str | None = None
    note: str = ""

    def as_dict(self, prices: dict) -> dict:
        entry = prices["prices"].get(self.price_key) if self.price_key else None
        return {
            "resource": self.resource,
            "description": self.description,
            "usd_month": round(self.usd_month, 2) if self.usd_month is not None else KNOWN_AFTER_DEPLOY,
            "price_source": entry["source"] if entry else None,
            "price_as_of": entry["as_of"] if entry else None,
            "note": self.note,
        }


def load_prices(path: Path = PRICES_FILE) -> dict:
    return json.loads(path.read_text())


def _price(prices: dict, key: str) -> float | None:
    entry = prices["prices"].get(key)
    return None if entry is None else float(entry["usd_month"])


def estimate(config: StackConfig, prices: dict) -> dict:
    items: list[CostItem] = []
    machine_key = f"machine.{config.vm.machine_type}"
    items.append(CostItem("vm", f"Compute Engine {config.vm.machine_type}, always on", _price(prices, machine_key), machine_key,
                          "" if _price(prices, machine_key) is not None else "no list price on file for this machine type"))
    disk = _price(prices, "disk.pd-balanced.gb")
    items.append(CostItem("vm boot disk", f"pd-balanced {config.vm.boot_disk_gb} GB", disk * config.vm.boot_disk_gb, "disk.pd-balanced.gb"))
    items.append(CostItem("data disk", f"pd-balanced {config.vm.data_disk_gb} GB", disk * config.vm.data_disk_gb, "disk.pd-balanced.gb"))
    items.append(CostItem("data disk snapshots", f"daily, kept {config.vm.snapshot_retention_days} days; incremental, so it depends on how much changes", None, "snapshot.gb",
                          f"at most about {config.vm.data_disk_gb * _price(prices, 'snapshot.gb'):.2f} for one full copy"))
    items.append(CostItem("static IP", "external IPv4, in use by the VM", _price(prices, "ip.external.in-use"), "ip.external.in-use"))
    if config.database.adopted:
        items.append(CostItem("Cloud SQL", f"existing instance {config.database.existing_instance}", 0.0, None, "adopted: billed where it already is"))
    else:
        items.append(_sql_tier_item(config.database.tier, prices))
        items.append(CostItem("Cloud SQL storage", f"SSD {config.database.disk_gb} GB (grows automatically)", _price(prices, "sql.ssd.gb") * config.database.disk_gb, "sql.ssd.gb"))
        items.append(CostItem("Cloud SQL backups", "7 daily backups and 7 days of logs for point-in-time recovery", None, "sql.backup.gb", "billed per GB actually stored"))
    secrets = len(logical_secrets(config))
    items.append(CostItem("Secret Manager", f"{secrets} secrets with one active version each (a rotation briefly holds two)", secrets * _price(prices, "secret.version"), "secret.version"))
    items.append(CostItem("network egress", "traffic out to the internet", None, None, "billed per GB served"))
    known = [item.usd_month for item in items if item.usd_month is not None]
    return {
        "region": prices["region"],
        "currency": prices["currency"],
        "items": [item.as_dict(prices) for item in items],
        "total_usd_month": round(sum(known), 2),
        "total_note": "sum of the items with a known price; usage-based items come on top",
    }


def _sql_tier_item(tier: str, prices: dict) -> CostItem:
    key = f"sql.{tier}"
    if _price(prices, key) is not None:
        return CostItem("Cloud SQL", f"PostgreSQL {tier}, zonal", _price(prices, key), key)
    match = re.match(CUSTOM_TIER_RE, tier)
    cpus, memory_gb = int(match.group(1)), int(match.group(2)) / 1024
    total = cpus * _price(prices, "sql.vcpu") + memory_gb * _price(prices, "sql.memory.gb")
    return CostItem("Cloud SQL", f"PostgreSQL {tier} ({cpus} vCPU, {memory_gb:g} GB), zonal", total, "sql.vcpu", "vCPU and memory priced separately")
