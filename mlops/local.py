"""The lifecycle's platform as the function app on a running local stack sees it: built from the app
settings the stack handed to its Functions host."""
from __future__ import annotations

import json

from emulator.home import StackHome
from lifecycle.bootstrap import build_platform
from lifecycle.ports import Platform
from lifecycle.settings import Settings


def app_settings(home: StackHome) -> dict[str, str]:
    return json.loads(home.path("functions", "settings.json").read_text())["Values"]


def local_settings(home: StackHome, **overrides: str) -> Settings:
    """The function app's settings on the stack at home, with some app settings replaced."""
    return Settings.from_env({**app_settings(home), **overrides})


def local_platform(home: StackHome) -> Platform:
    return build_platform(local_settings(home))
