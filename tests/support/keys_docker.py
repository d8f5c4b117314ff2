"""The docker STAND-IN wrapped for the keys tests: after each successful `compose up`/`restart` of named
services, it appends the fingerprints of each one's secret files to a timeline (JSON lines).

Kept apart from keys_stack.py so that the launcher, run for every docker call on the "VM", imports
only this and the stand-in, not the Google client libraries.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support import fake_docker


def docker_wrapper_main(argv: list[str], docker_dir: str, secrets_dir: str, timeline: str) -> int:
    code = fake_docker.main(argv, docker_dir)
    if code != 0 or argv[:1] != ["compose"]:
        return code
    _, _, _, sub, rest = fake_docker._parse_compose_args(argv[1:])
    if sub not in ("up", "restart"):
        return code
    for service in [arg for arg in rest if not arg.startswith("-")]:
        directory = Path(secrets_dir) / service
        files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:8] for path in sorted(directory.glob("*"))} if directory.is_dir() else {}
        with open(timeline, "a") as log:
            log.write(json.dumps({"service": service, "files": files}) + "\n")
    return code
