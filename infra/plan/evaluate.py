"""Evaluates the Pulumi program offline for one stack's config file and builds the plan document.

The document (stable; the README documents it):
  {"stack", "resources": [{"urn", "type", "name", "parent", "depends_on", "inputs", "options"}],
   "outputs": {...}, "files": {"<relative path>": "<content>"}, "cost": {"items": [...], "total_usd_month": ...},
   "notes": ["<what the plan assumed, e.g. a stand-in description of an adopted instance>"],
   "warnings": ["<advice on the config that does not stop a deploy>"]}
Secret values appear only as "[secret]".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config import NAMESPACE, ConfigError, StackConfig, parse_config
from infra.plan.cost import estimate, load_prices
from infra.plan.files import plan_files
from infra.plan.mocks import STAND_IN_ADOPTED_INSTANCE, UNKNOWN_VALUES, PlanMocks, RecordingMonitor, Registration, load_adopted_instance

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_NAME = "inngest-kit"
SECRET = "[secret]"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc._special_sig_key
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pulumi.runtime.rpc._special_secret_sig


class PlanInputError(Exception):
    """The stack cannot be planned: a missing file, or validation problems (all of them)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class PlanResult:
    config: StackConfig
    document: dict[str, Any]
    generated_secrets: list[str]  # for tests: values that must never appear in any output
    registrations: list[Registration] = field(default_factory=list)  # for tests: IDs and options as registered


# Pulumi's rule for a stack name (pkg/backend: `^[A-Za-z0-9_.-]{1,100}$`), optionally qualified as
# <org>/<stack> or <org>/<project>/<stack>. The plan also refuses "." and "..": Pulumi accepts
# them, but they would name directories in Pulumi.<stack>.yaml and build/<stack>/.
STACK_PART_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def stack_name_problems(stack: str) -> list[str]:
    parts = stack.split("/")
    fix = "Fix: use letters, digits, -, _ and . (at most 100), optionally as <org>/<stack> or <org>/<project>/<stack>, e.g. prod."
    if len(parts) > 3:
        return [f"--stack: {stack!r} has more than two '/'. {fix}"]
    *qualifiers, name = parts
    if not STACK_PART_RE.fullmatch(name) or name in (".", ".."):
        return [f"--stack: {stack!r} is not a stack name Pulumi accepts. {fix}"]
    if qualifiers and not OWNER_RE.fullmatch(qualifiers[0]):
        return [f"--stack: {qualifiers[0]!r} is not an organization name. {fix}"]
    if len(qualifiers) == 2 and (not STACK_PART_RE.fullmatch(qualifiers[1]) or qualifiers[1] in (".", "..")):
        return [f"--stack: {qualifiers[1]!r} is not a project name. {fix}"]
    return []


def short_stack_name(stack: str) -> str:
    """The stack part of a qualified name: Pulumi.<it>.yaml holds its config."""
    return stack.rsplit("/", 1)[-1]


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    return root / f"Pulumi.{short_stack_name(stack)}.yaml"


def read_stack_config(path: Path, option: str = "--stack") -> dict[str, Any]:
    """The `config:` map of a stack file; every error names the option that chose the file."""
    if not path.is_file():
        if option == "--config-file":
            raise PlanInputError([f"--config-file: {path} is not a file. Fix: give the path of a stack file such as Pulumi.example.yaml."])
        raise PlanInputError([f"--stack: no stack file {path.name}. Fix: create it (copy Pulumi.example.yaml) or pick an existing stack."])
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise PlanInputError([f"{option}: {path.name} cannot be read ({type(error).__name__}). Fix: check the file's permissions and encoding (UTF-8)."]) from error
    except (yaml.YAMLError, RecursionError, ValueError) as error:  # ValueError: PyYAML's int() of a 5,000-digit number
        raise PlanInputError([f"{option}: {path.name} is not valid YAML ({_first_line(error)}). Fix: correct the syntax."]) from error
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise PlanInputError([f"{option}: {path.name} has no `config:` map. Fix: add one, as in Pulumi.example.yaml."])
    return config


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _masked(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """The value with every `secure:` inside it replaced, and whether there was one. Deeper than any
    setting goes (or a self-referencing YAML anchor) is left as is, for validation to refuse."""
    if _is_secure(value):
        return SECRET, True
    if depth > 32:
        return value, False
    if isinstance(value, dict):
        pairs = [(k, _masked(v, depth + 1)) for k, v in value.items()]
        return {k: m for k, (m, _) in pairs}, any(s for _, (_, s) in pairs)
    if isinstance(value, list):
        items = [_masked(v, depth + 1) for v in value]
        return [m for m, _ in items], any(s for _, s in items)
    return value, False


def _mask_config(raw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Replaces encrypted (`secure:`) values, which the plan never decrypts, with a placeholder; and
    names the keys that hold one, as the engine's list of secret keys does on `pulumi up`."""
    masked: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in raw.items():
        masked[key], secret = _masked(value)
        if secret or key == f"{NAMESPACE}:appSecrets":
            secret_keys.add(key)
    return masked, secret_keys


def _to_engine_config(raw: dict[str, Any]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in raw.items()}


def mask(value: Any) -> Any:
    """Plain JSON with every secret replaced by "[secret]"."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return SECRET
        return {k: mask(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a double
    if isinstance(value, str):
        for stand_in, shown in UNKNOWN_VALUES.items():
            value = value.replace(stand_in, shown)
        return value
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return str(value)


def evaluate(
    stack: str,
    *,
    config_file: Path | None = None,
    raw: dict[str, Any] | None = None,
    adopted_instance: Path | dict[str, Any] | None = None,
) -> PlanResult:
    """Runs the program under mocks, on `raw` config if given, else on the stack's file.

    `adopted_instance`: the description of the instance `database.existingInstance` names, in the
    format of `gcloud sql instances describe NAME --format=json`; by default a committed stand-in."""
    problems = stack_name_problems(stack)
    if problems:
        raise PlanInputError(problems)
    if raw is None:
        raw = read_stack_config(config_file, "--config-file") if config_file is not None else read_stack_config(stack_file(stack))
    masked, secret_keys = _mask_config(raw)
    try:
        config = parse_config(masked, encrypted_keys=secret_keys)
    except ConfigError as error:
        raise PlanInputError(error.problems) from error
    app_secret_values = {name: (SECRET if _is_secure(v) else v) for name, v in (raw.get(f"{NAMESPACE}:appSecrets") or {}).items()}
    described, notes = _adopted_description(config, adopted_instance)
    try:
        result = _run_program(stack, config, masked, secret_keys, app_secret_values, described)
    except ConfigError as error:  # what the program found reading an adopted instance
        raise PlanInputError(error.problems + [f"(from {note})" for note in notes]) from error
    result.document["notes"] = notes
    return result


def _adopted_description(config: StackConfig, given: Path | dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    if not config.database.adopted:
        return None, []
    instance = config.database.existing_instance
    if isinstance(given, dict):
        return given, [f"the adopted instance {instance} was described by the caller, not read from GCP"]
    path = given or STAND_IN_ADOPTED_INSTANCE
    try:
        described = load_adopted_instance(path)
    except (OSError, ValueError) as error:
        raise PlanInputError([f"--adopted-instance: cannot read {path} ({error}). Fix: give the JSON of `gcloud sql instances describe {instance} --format=json`."]) from error
    if given is None:
        return described, [
            f"STAND-IN: the offline plan cannot read the adopted instance {instance}; it assumed the made-up description in "
            f"{path.relative_to(PROJECT_ROOT)} (tier {described.get('settings', {}).get('tier')}; its networking decides the Database line below). "
            f"For your real instance: gcloud sql instances describe {instance} --format=json > {instance}.json, then plan with --adopted-instance {instance}.json"
        ]
    return described, [f"the adopted instance {instance} as described in {path} (not read from GCP by the offline plan)"]


def _run_program(stack, config, masked, secret_keys, app_secret_values, adopted_instance=None) -> PlanResult:
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.sync_await import _sync_await

    mocks = PlanMocks(config.project, config.region, adopted_instance)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(_to_engine_config(masked), sorted(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack=stack, preview=False, monitor=monitor)

    from infra.program import build  # after set_mocks, as Pulumi's testing guide requires

    holder: dict[str, Any] = {}

    async def run():
        secret_inputs = {name: pulumi.Output.secret(value) for name, value in app_secret_values.items()}
        # The registry token is a secret config value the plan never decrypts.
        built = build(config, secret_inputs, pulumi.Output.secret(SECRET) if config.app.registry_username else None)
        for key, value in built.outputs.items():
            output = pulumi.Output.from_input(value)
            holder[key] = (await output.is_secret(), await output.future())

    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    _sync_await(pulumi.runtime.stack.run_pulumi_func(lambda: _sync_await(run())))
    outputs = _mask_outputs(holder)
    resources = [_resource_entry(r) for r in monitor.registrations]
    document = {
        "stack": stack,
        "resources": resources,
        "outputs": outputs,
        "files": plan_files(resources),
        "cost": estimate(config, load_prices()),
        "warnings": list(config.warnings),
    }
    return PlanResult(config=config, document=document, generated_secrets=list(mocks.generated_secrets), registrations=list(monitor.registrations))


def _mask_outputs(values: dict[str, tuple[bool, Any]]) -> dict[str, Any]:
    outputs = {}
    for key, (is_secret, value) in sorted(values.items()):
        outputs[key] = SECRET if is_secret else mask(value)
    return outputs


def _resource_entry(r: Registration) -> dict[str, Any]:
    return {
        "urn": r.urn,
        "type": r.type,
        "name": r.name,
        "parent": r.parent,
        "depends_on": r.dependencies,
        # A dynamic resource carries its pickled provider: code, not a setting.
        "inputs": mask({k: v for k, v in r.inputs.items() if k != "__provider"}),
        "options": {
            "custom": r.custom,
            "read_only": r.read,
            "protect": r.protect,
            "retain_on_delete": r.retain_on_delete,
            "ignore_changes": r.ignore_changes,
            "secret_outputs": r.secret_outputs,
        },
    }
