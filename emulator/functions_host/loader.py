"""Loading a v2-model FunctionApp and reading what the real host would read from it: each function's
trigger, its binding settings with `%NAME%` resolved, and the Python signature the worker checks.

Everything here runs at start-up, so every problem becomes a HostError that names the function and
says what to change; nothing here runs per invocation."""
from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from croniter import croniter

EVENT_GRID = "eventGridTrigger"
TIMER = "timerTrigger"
HTTP = "httpTrigger"
SUPPORTED_TRIGGERS = (EVENT_GRID, TIMER, HTTP)
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_SETTING = re.compile(r"%([^%\s]+)%")


class HostError(Exception):
    """A start-up problem, worded for the user who has to fix it."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host sees it after indexing."""
    name: str
    trigger: str                      # eventGridTrigger | timerTrigger | httpTrigger
    arg_name: str                     # the parameter that receives the trigger binding
    func: Callable[..., Any]
    is_async: bool
    wants_context: bool               # the worker passes func.Context to a parameter named `context`
    has_return: bool                  # a `$return` output binding (HTTP functions)
    schedule: str | None = None       # timers: resolved NCRONTAB
    schedule_source: str | None = None  # timers: as written in the decorator, e.g. %RETRAIN_SCHEDULE%
    run_on_startup: bool = False
    route: str | None = None          # HTTP: template relative to /api/
    methods: tuple[str, ...] | None = None  # HTTP: None = any method
    auth_level: str | None = None     # HTTP: anonymous | function | admin

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "trigger": self.trigger}
        if self.trigger == TIMER:
            out.update(schedule=self.schedule, run_on_startup=self.run_on_startup)
        elif self.trigger == HTTP:
            out.update(route=self.route, methods=list(self.methods or ALL_METHODS),
                       auth_level=self.auth_level)
        return out


def load_app(ref: str = "function_app:app") -> Any:
    """Import "module:attribute" the way the worker imports function_app.py: from the current
    directory, so run it from the app's root (or put that root on sys.path)."""
    module_name, _, attribute = ref.partition(":")
    attribute = attribute or "app"
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HostError(f"cannot import the function app module {module_name!r} ({exc}); "
                        f"run from the app's root directory or pass --app module:attribute") from exc
    except Exception as exc:   # the app's own import-time code failed: say so, keep the traceback
        raise HostError(f"importing the function app module {module_name!r} failed: "
                        f"{type(exc).__name__}: {exc}") from exc
    app = getattr(module, attribute, None)
    if app is None or not hasattr(app, "get_functions"):
        raise HostError(f"{ref!r} is not an azure.functions.FunctionApp: module {module_name!r} "
                        f"has no FunctionApp named {attribute!r}")
    return app


def read_settings_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `Values` of a Functions local.settings.json (`{"IsEncrypted": false, "Values": {...}}`)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HostError(f"cannot read settings file {str(path)!r}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Values", {}), dict):
        raise HostError(f"settings file {str(path)!r} is not in local.settings.json format "
                        '({"IsEncrypted": false, "Values": {"NAME": "value"}})')
    if document.get("IsEncrypted"):
        raise HostError(f"settings file {str(path)!r} is encrypted; the local host reads plain values only "
                        "(func settings decrypt)")
    return {name: _setting_text(path, name, value) for name, value in document.get("Values", {}).items()}


def _setting_text(path: Any, name: str, value: Any) -> str:
    # App settings are strings in Azure; accept JSON scalars the way people write them by hand.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise HostError(f"setting {name!r} in {str(path)!r} must be a string, not {type(value).__name__}")


SKIPPED_SETTING = "Skipping '{}' from local settings as it's already defined in current environment variables."


def over_environment(values: Mapping[str, str], environ: Mapping[str, str] = os.environ,
                     warn: Callable[[str], None] = print) -> dict[str, str]:
    """Core Tools' rule for local.settings.json: a setting already defined (non-empty) in the environment
    keeps the environment's value, and Core Tools says so in these words. Returns the values in effect."""
    effective = {}
    for name, value in values.items():
        if environ.get(name):
            warn(SKIPPED_SETTING.format(name))
            effective[name] = environ[name]
        else:
            effective[name] = value
    return effective


def apply_settings(settings: Mapping[str, str]) -> None:
    """App settings reach function code as environment variables, as in Azure. Values given to the
    host win over the environment: a settings file has been through `over_environment` already, and the
    local stack's own connections must never yield to a shell's real Azure settings."""
    os.environ.update({name: str(value) for name, value in settings.items()})


def resolve(value: str, settings: Mapping[str, str], *, function: str, what: str) -> str:
    """Replace each %NAME% with the app setting NAME, as the host's name resolver does."""
    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        found = settings.get(name, os.environ.get(name))
        if found is None:
            raise HostError(f"function {function!r}: {what} {value!r} reads app setting {name!r}, which is "
                            f"not set; add it to local.settings.json Values (or the environment)")
        return found
    return _SETTING.sub(setting, value)


def index_functions(app: Any, settings: Mapping[str, str] | None = None) -> list[FunctionSpec]:
    """Read every function from the app object and check it as the host and worker would at start-up."""
    # get_functions() records names to detect duplicates and so fails on a second call with the
    # same app object (azure-functions 1.26); forget the previous call so a host can be restarted.
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    except ValueError as exc:
        raise HostError(f"the function app is invalid: {exc}") from exc
    return [_spec(fn, settings or {}) for fn in functions]


def _spec(fn: Any, settings: Mapping[str, str]) -> FunctionSpec:
    name = fn.get_function_name()
    trigger = fn.get_trigger()
    kind = trigger.get_binding_name() if trigger is not None else None
    if kind not in SUPPORTED_TRIGGERS:
        raise HostError(f"function {name!r} uses trigger {kind!r}, which the local Functions host does not run "
                        f"(it runs {', '.join(SUPPORTED_TRIGGERS)})")
    has_return = False
    for binding in fn.get_bindings():
        if binding is trigger:
            continue
        if binding.get_binding_name() == "http" and binding.name == "$return":
            has_return = True
            continue
        raise HostError(f"function {name!r} declares binding {binding.get_binding_name()!r} "
                        f"({binding.name!r}), which the local Functions host does not provide; "
                        f"use the SDK client inside the function instead")
    func = fn.get_user_function()
    wants_context = _check_signature(name, func, trigger.name)
    common = dict(name=name, trigger=kind, arg_name=trigger.name, func=func,
                  is_async=inspect.iscoroutinefunction(func), wants_context=wants_context,
                  has_return=has_return)
    if kind == TIMER:
        source = trigger.schedule
        schedule = resolve(source, settings, function=name, what="timer schedule")
        _check_schedule(name, source, schedule)
        return FunctionSpec(**common, schedule=schedule, schedule_source=source,
                            run_on_startup=bool(trigger.run_on_startup))
    if kind == HTTP:
        methods = tuple(str(getattr(m, "value", m)).upper() for m in trigger.methods or ()) or None
        level = getattr(trigger.auth_level, "value", trigger.auth_level) or "function"
        return FunctionSpec(**common, route=(trigger.route or name).strip("/"), methods=methods,
                            auth_level=str(level).lower())
    return FunctionSpec(**common)


def _check_signature(name: str, func: Callable[..., Any], arg_name: str) -> bool:
    """The worker refuses a function whose parameters do not match its bindings; so do we."""
    parameters = inspect.signature(func).parameters
    if arg_name not in parameters:
        raise HostError(f"function {name!r}: the trigger binding is named {arg_name!r} but the Python "
                        f"function has no parameter of that name (arg_name= in the decorator)")
    extra = [p for p, spec in parameters.items()
             if p not in (arg_name, "context") and spec.default is inspect.Parameter.empty
             and spec.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if extra:
        raise HostError(f"function {name!r}: parameter(s) {', '.join(extra)} have no binding; "
                        f"remove them or give them defaults")
    return "context" in parameters and arg_name != "context"


def _check_schedule(name: str, source: str, schedule: str) -> None:
    # croniter also accepts 5- and 7-field forms; the Functions timer wants exactly six.
    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        origin = f" (from {source})" if source != schedule else ""
        raise HostError(f"function {name!r}: timer schedule {schedule!r}{origin} is not a valid NCRONTAB "
                        f"expression (6 fields, seconds first, e.g. '0 */5 * * * *')")
