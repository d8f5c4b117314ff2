"""Writes the published JSON Schema of a stack file, generated from the config models.

`python -m infra.config_schema` rewrites schema/stack-config.schema.json; a test checks that the
committed file equals what the models generate, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infra.config import config_json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema" / "stack-config.schema.json"


def schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(schema_text())
    print(f"wrote {SCHEMA_FILE.relative_to(SCHEMA_FILE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
