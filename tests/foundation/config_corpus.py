"""A deterministic corpus of malformed stack configs, for the fuzz test (tests/foundation/test_config_fuzz.py).

Each config is the example stack with a few mutations drawn by a seeded random generator: a setting
replaced by junk of any type (digits that are not ASCII, 5,000-digit strings and ints, huge and
non-finite floats, nested junk, control characters, booleans where numbers go), a section replaced or
emptied, a required setting removed, unknown and non-string keys added.
`python -m tests.foundation.config_corpus [--plan]` prints the corpus' size and what parse_config made of
it (with --plan, also the whole offline plan of every config it accepted).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import yaml

from infra.plan.evaluate import PROJECT_ROOT

SEED = 20261124
SIZE = 1500

SECTIONS = {
    "inngest-kit:vm": ["machineType", "bootDiskGb", "dataDiskGb", "snapshotRetentionDays", "readyTimeoutSeconds", "subnetCidr"],
    "inngest-kit:database": ["tier", "version", "diskGb", "existingInstance", "maintenanceDay", "maintenanceHour"],
    "inngest-kit:inngest": ["version", "postgresMaxOpenConns", "postgresMaxIdleConns", "cpus", "memoryMb", "digest"],
    "inngest-kit:caddy": ["cpus", "memoryMb", "digest"],
    "inngest-kit:redis": ["cpus", "memoryMb", "digest"],
    "inngest-kit:app": ["image", "command", "port", "healthPath", "env", "dbPoolSize", "exposeInngestEndpoint", "cpus", "memoryMb", "registry"],
}
TOP_LEVEL = [
    "gcp:project",
    "gcp:region",
    "gcp:zone",
    "inngest-kit:name",
    "inngest-kit:domain",
    "inngest-kit:acmeEmail",
    "inngest-kit:appSecrets",
    "inngest-kit:sshSourceRanges",
    "inngest-kit:sshVia",
    "inngest-kit:sshUser",
    "inngest-kit:registryToken",
    *SECTIONS,
]


def _deep(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


FIXED_JUNK: list[Any] = [
    "²",
    "٣",
    "１２",
    "9" * 5000,
    10**5000,
    -(10**5000),
    "1e400",
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    -0.0,
    -1,
    0,
    2**63,
    True,
    False,
    None,
    "",
    " ",
    "\n",
    "value\n",
    "a\x00b",
    "\u202e",
    "{$HOME}",
    '"quoted"',
    "`backtick`",
    "x" * 10000,
    [],
    {},
    [None],
    [1, 2, 3],
    {"secure": 5},
    {"secure": "v1:abc"},
    {"secure": "v1:abc", "extra": 1},
    {1: "int key"},
    {None: "none key"},
    {True: "bool key"},
    {1.5: "float key"},
    {"nested": {"deeper": ["x", {"y": None}]}},
    _deep(50),
    _deep(300),
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["::/1", "8000::/1"],
    ["10.0.0.1/8"],
    "europe-west1-a",
    "us-central1-z",
    "n1-standard-1",
    "e2-custom-2-4096",
    "e2-custom-3-4096",
    "custom-1-1024",
    "registry.example.com:5000/acme/web:1.4.2",
    "acme/web:latest",
    "Acme/Web:1",
    "v1.43.0",
    "v0.0.1",
    "POSTGRES_15",
    "db-custom-99999999999999999999-1",
    "127.0.0.1",
    "direct",
    "ops@example.com",
    "ops@exa\nmple.com",
    "sha256:" + "a" * 64,
    {"username": "deploy"},
    {"username": "dep loy"},
]


def _junk(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.55:
        return copy.deepcopy(rng.choice(FIXED_JUNK))
    if roll < 0.7:
        return rng.choice([rng.randint(-(10**6), 10**6), rng.uniform(-1e6, 1e6), rng.randint(0, 2**70)])
    if roll < 0.85:
        alphabet = "abcXYZ019-_.:/@{}$\"'`\\ \t\n²٣é€\x00\x7f"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    return [_junk(rng) for _ in range(rng.randint(0, 3))] if rng.random() < 0.5 else {rng.choice(["a", "B", 1, "FOO_KEY"]): _junk(rng) for _ in range(rng.randint(0, 3))}


def _mutate(config: dict, rng: random.Random) -> None:
    kind = rng.randrange(7)
    if kind == 0:  # a top-level setting replaced by junk
        config[rng.choice(TOP_LEVEL)] = _junk(rng)
    elif kind == 1:  # a setting inside a section replaced by junk
        section = rng.choice(list(SECTIONS))
        if not isinstance(config.get(section), dict):
            config[section] = {}
        config[section][rng.choice(SECTIONS[section])] = _junk(rng)
    elif kind == 2:  # a setting removed
        config.pop(rng.choice(TOP_LEVEL), None)
    elif kind == 3:  # an unknown key, at the top or in a section, perhaps not a string
        key = rng.choice(["inngest-kit:colour", "inngest-kit:vm.machineType", 7, None, 2.5, True, "inngest-kit:", "gcp:credentials", "other:thing"])
        if rng.random() < 0.5:
            config[key] = _junk(rng)
        else:
            section = rng.choice(list(SECTIONS))
            if isinstance(config.get(section), dict):
                config[section][key] = _junk(rng)
    elif kind == 4:  # an app env or secret entry with junk name or value
        target = rng.choice(["env", "secrets"])
        name = rng.choice(["API_TOKEN", "lower", "PORT", "NODE_ENV", "OK_NAME\n", "", 5, "DATABASE_URL", "X" * 300])
        if target == "env" and isinstance(config.get("inngest-kit:app"), dict):
            env = config["inngest-kit:app"].setdefault("env", {})
            if isinstance(env, dict):
                env[name] = _junk(rng)
        else:
            secrets = config.setdefault("inngest-kit:appSecrets", {})
            if isinstance(secrets, dict):
                secrets[name] = _junk(rng)
    elif kind == 5:  # a whole section of the wrong type
        config[rng.choice(list(SECTIONS))] = _junk(rng)
    else:  # numbers pushed past what the VM and the database can hold
        section = rng.choice(["inngest-kit:app", "inngest-kit:inngest", "inngest-kit:caddy", "inngest-kit:redis"])
        if isinstance(config.get(section), dict):
            config[section][rng.choice(["cpus", "memoryMb"])] = rng.choice([64, 63.9, 4096, 262144, 0.1, 10**30, "64"])


def example_config() -> dict:
    config = yaml.safe_load((PROJECT_ROOT / "Pulumi.example.yaml").read_text())["config"]
    config["inngest-kit:appSecrets"] = {"STRIPE_API_KEY": "[secret]"}
    return config


def corpus(size: int = SIZE, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    base = example_config()
    configs = []
    for _ in range(size):
        config = copy.deepcopy(base)
        for _ in range(rng.randint(1, 4)):
            _mutate(config, rng)
        configs.append(config)
    return configs


def main() -> None:
    import sys
    import time
    import traceback

    from infra.config import ConfigError, StackConfig, parse_config

    configs = corpus()
    accepted = refused = tracebacks = 0
    started = time.perf_counter()
    for config in configs:
        try:
            result = parse_config(config)
            accepted += isinstance(result, StackConfig)
        except ConfigError:
            refused += 1
        except Exception:
            tracebacks += 1
            traceback.print_exc(limit=1)
    elapsed = time.perf_counter() - started
    print(f"config fuzz: {len(configs)} malformed configs, {refused} refused, {accepted} accepted, {tracebacks} tracebacks, {elapsed:.2f} s")
    if "--plan" in sys.argv:
        from infra.plan.evaluate import PlanInputError, evaluate

        planned = program_refused = plan_tracebacks = 0
        started = time.perf_counter()
        for config in configs:
            try:
                parse_config(config)
            except ConfigError:
                continue
            try:
                evaluate("fuzz", raw=config)
                planned += 1
            except PlanInputError:
                program_refused += 1
            except Exception:
                plan_tracebacks += 1
                traceback.print_exc(limit=1)
        elapsed = time.perf_counter() - started
        print(f"plan of the accepted configs: {planned} planned, {program_refused} refused by the program, {plan_tracebacks} tracebacks, {elapsed:.1f} s")


if __name__ == "__main__":
    main()
