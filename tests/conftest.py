"""Shared fixtures: a real Azurite per test session, and the whole local stack for end-to-end tests."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from emulator.azurite import Azurite, AzuriteEndpoints

T = TypeVar("T")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> AzuriteEndpoints:
    with Azurite(tmp_path_factory.mktemp("azurite")) as endpoints:
        yield endpoints


def wait_until(probe: Callable[[], T], timeout: float = 10, interval: float = 0.05, what: str = "condition") -> T:
    """Poll until probe() is truthy; fail the test with `what` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
