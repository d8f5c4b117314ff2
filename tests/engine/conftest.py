"""Fixtures of the engine tests: one real Docker engine (tests/support/engine.py) for the session, and
the kit's stack deployed on it by the kit's own deploy (tests/support/engine_bed.py).

Every test here is marked `engine`: `pytest -m engine` runs them alone. Where the bed cannot run
(not root, no docker.io, no images), each is skipped with a reason naming `sudo make test-deps`.
"""

from __future__ import annotations

import pytest

from tests.support.engine import (
    BASE_TARBALL,
    SKIP_REASON,
    Engine,
    EngineUnavailable,
    exclusive,
    images_ready,
    missing_prerequisites,
    prepare_images,
)
from tests.support.engine_bed import build_bed


def pytest_collection_modifyitems(items):
    """Marks the engine tests, and runs them last: the bed holds the VM's ports (80, 443, 127.0.0.1:8288
    and 8290) from its first test to the end of the session, and other tests probe 8288."""
    engine_items = [item for item in items if "tests/engine/" in str(item.fspath)]
    for item in engine_items:
        item.add_marker(pytest.mark.engine)
    items[:] = [item for item in items if item not in engine_items] + engine_items


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    problems = missing_prerequisites()
    if problems:
        pytest.skip(f"{SKIP_REASON}; here: {'; '.join(problems)}")
    with exclusive():
        machine = Engine(tmp_path_factory.mktemp("engine"))
        try:
            machine.boot()
            # Builds only an image whose inputs changed since the installer built it (seconds otherwise).
            prepare_images(machine, BASE_TARBALL if BASE_TARBALL.exists() else None, say=lambda text: None)
            missing = images_ready(machine)
            if missing:
                pytest.skip(f"{SKIP_REASON}; missing images: {', '.join(missing)}")
            yield machine
        except EngineUnavailable as error:
            pytest.skip(str(error))
        finally:
            machine.shutdown()


@pytest.fixture(scope="session")
def bed(engine, tmp_path_factory):
    """The stack, deployed once by the kit's deploy; tests leave it healthy for the next one."""
    stack = build_bed(engine, tmp_path_factory.mktemp("engine-bed"))
    try:
        stack.first_deploy = stack.deploy(stack.files())
        yield stack
    finally:
        stack.stop()
