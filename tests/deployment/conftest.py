"""The one compose stack every deployment test shares (built and started once, torn down at the end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployment.stack import BUILD_TIMEOUT, WHY_NOT, Stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if WHY_NOT is not None:
        pytest.skip(WHY_NOT)
    running = Stack(tmp_path_factory.mktemp("compose"))
    try:
        running.compose("up", "--build", "-d", "--wait", timeout=BUILD_TIMEOUT)
        yield running
    finally:
        running.down()
