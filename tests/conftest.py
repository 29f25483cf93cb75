"""Shared fixtures: a real Azurite per test session, and the whole local stack for end-to-end tests."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from emulator.azurite import Azurite, AzuriteEndpoints

T = TypeVar("T")

# Fixtures that start an Azurite: every test that uses one, directly or through another fixture, is a
# `stack` test (left out of `make unit`). Modules that start the local stack or server processes mark
# themselves with `pytestmark = pytest.mark.stack`.
AZURITE_FIXTURES = {"azurite", "oauth_azurite"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if AZURITE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


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


def start_local_stack(tmp_path_factory, name: str, settings: dict[str, str]):
    """The whole local stack with the project's function app, Event Grid retries compressed, `settings`
    added to the app settings; returns (stack, info, platform, data container client). Stop the stack."""
    from azure.storage.blob import BlobServiceClient

    from emulator.home import StackHome
    from emulator.stack import Stack, StackOptions
    from mlops.local import local_platform
    home = StackHome(tmp_path_factory.mktemp(name))
    # The monitor timer only where a test asks for it: its passes compete for the 2 cores with the
    # deployments whose latency the canary judge measures.
    settings = {"MONITOR_SCHEDULE": "0 0 0 1 1 *", **settings}
    stack = Stack(home, StackOptions(retry_scale=0.01, extra_settings=settings))
    info = stack.start()
    data = BlobServiceClient.from_connection_string(info.storage_connection_string).get_container_client("data")
    data.create_container()
    return stack, info, local_platform(home), data


def start_environments(tmp_path_factory, name: str, settings: dict[str, str], approval: str = "none"):
    """preprod and prod side by side (emulator/environments.py) with the project's function app, Event Grid
    retries compressed, `settings` added to both apps' settings. Returns (environments, the lifecycle's platforms,
    the data containers' clients), the last two by environment name; the data containers exist. Stop them after."""
    from azure.storage.blob import BlobServiceClient

    from emulator.environments import Environments
    from emulator.home import StackHome
    from emulator.stack import StackOptions
    from mlops.local import app_settings, local_platform
    home = StackHome(tmp_path_factory.mktemp(name) / "home")
    settings = {"MONITOR_SCHEDULE": "0 0 0 1 1 *", **settings}      # as start_local_stack: no monitor passes
    environments = Environments(home, StackOptions(retry_scale=0.01, extra_settings=settings), approval=approval)
    info = environments.start()
    storage = BlobServiceClient.from_connection_string(info.storage_connection_string)
    platforms, data = {}, {}
    for env, env_home in environments.homes.items():
        platforms[env] = local_platform(env_home)
        data[env] = storage.get_container_client(app_settings(env_home).get("DATA_CONTAINER", "data"))
        data[env].create_container()
    return environments, platforms, data
