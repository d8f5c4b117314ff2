"""The docker STAND-IN wrapped for the keys tests: after each successful `compose up`/`restart` of named
services, it appends the fingerprints of each one's secret files to a timeline (JSON lines).

Redis: `compose exec -T redis redis-cli` with `AUTH default <password>` and `ACL LOAD` on stdin is
answered by a small STAND-IN of Redis's ACL semantics (the real redis-server's are tested in
tests/render/test_container_scripts.py): the users.acl Redis last loaded decides whether AUTH passes,
and ACL LOAD rereads the file. What Redis accepts (the first 8 hex characters of each password hash)
goes on the timeline as an `accepted` entry, at each (re)start and each reload.

Kept apart from keys_stack.py so that the launcher, run for every docker call on the "VM", imports
only this and the stand-in, not the Google client libraries.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from tests.support import fake_docker

REDIS_LOADED = "redis-loaded-acl.json"  # beside the timeline: the hashes the stand-in Redis accepts now


def accepted_hashes(acl_file: Path) -> list[str]:
    """The password hashes of the `default` user in a users.acl, as Redis reads them."""
    for line in acl_file.read_text().splitlines():
        words = line.split()
        if words[:2] == ["user", "default"]:
            return [word[1:] for word in words[2:] if word.startswith("#")]
    return []


def _record(timeline: str, entry: dict) -> None:
    with open(timeline, "a") as log:
        log.write(json.dumps(entry) + "\n")


def _redis_cli(secrets_dir: str, timeline: str) -> int:
    loaded_path = Path(timeline).with_name(REDIS_LOADED)
    loaded = json.loads(loaded_path.read_text()) if loaded_path.exists() else []
    authenticated = False
    for line in sys.stdin.read().splitlines():
        words = line.split()
        if words[:2] == ["AUTH", "default"] and len(words) == 3:
            authenticated = hashlib.sha256(words[2].encode()).hexdigest() in loaded
            print("OK" if authenticated else "WRONGPASS invalid username-password pair or user is disabled.")
        elif words == ["ACL", "LOAD"]:
            if not authenticated:
                print("NOAUTH Authentication required.")
                continue
            hashes = accepted_hashes(Path(secrets_dir) / "redis" / "users.acl")
            loaded_path.write_text(json.dumps(hashes))
            _record(timeline, {"service": "redis", "accepted": [h[:8] for h in hashes]})
            print("OK")
        else:
            print(f"ERR stand-in redis-cli does not support {words[:1]}")
    return 0


def docker_wrapper_main(argv: list[str], docker_dir: str, secrets_dir: str, timeline: str) -> int:
    code = fake_docker.main(argv, docker_dir)
    if code != 0 or argv[:1] != ["compose"]:
        return code
    _, _, _, sub, rest = fake_docker._parse_compose_args(argv[1:])
    if sub == "exec" and [arg for arg in rest if arg != "-T"][:2] == ["redis", "redis-cli"]:
        return _redis_cli(secrets_dir, timeline)
    if sub not in ("up", "restart"):
        return code
    for service in [arg for arg in rest if not arg.startswith("-")]:
        directory = Path(secrets_dir) / service
        if service == "redis":
            # A (re)started Redis reads its ACL file afresh.
            hashes = accepted_hashes(directory / "users.acl")
            Path(timeline).with_name(REDIS_LOADED).write_text(json.dumps(hashes))
            _record(timeline, {"service": "redis", "accepted": [h[:8] for h in hashes]})
            continue
        files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:8] for path in sorted(directory.glob("*"))} if directory.is_dir() else {}
        _record(timeline, {"service": service, "files": files})
    return code
