"""The audit log on the VM: one JSON object per line, appended by the deploy and the keys CLI.

`entry` makes a line (send it as stdin to `commands.audit_append`); `parse_audit` and `render_audit`
read lines back for `python -m infra audit`. Lines that are not JSON are kept as they are, so a
hand-written note in the log is shown rather than lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

FIRST_FIELDS = ("time", "action", "actor")


def entry(action: str, *, at: datetime, **fields: Any) -> str:
    """One audit line. Never pass a secret value: pass its fingerprint (infra.keys.values.fingerprint)."""
    record = {"time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "action": action, **fields}
    return json.dumps(record, sort_keys=False, separators=(",", ":")) + "\n"


def parse_audit(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        entries.append(record if isinstance(record, dict) else {"line": line})
    return entries


def render_audit(entries: list[dict[str, Any]]) -> str:
    lines = []
    for record in entries:
        if set(record) == {"line"}:
            lines.append(record["line"])
            continue
        head = [str(record[name]) for name in FIRST_FIELDS if name in record]
        rest = [f"{name}={_show(value)}" for name, value in record.items() if name not in FIRST_FIELDS]
        lines.append("  ".join(head + rest))
    return "\n".join(lines) + ("\n" if lines else "")


def _show(value: Any) -> str:
    return value if isinstance(value, str) and " " not in value else json.dumps(value)
