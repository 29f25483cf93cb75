"""What each function of the Function App imports on its first call, walked from the code, in the Azure
configuration (MLOPS_PLATFORM=azure; the settings must be in the environment).

    python -m bench.function_imports FUNCTION      one function, timed as the Functions worker loads it
    python -m bench.function_imports --all         every function at once

The worker imports function_app, then a call builds the platform (the adapters) and runs the handler,
whose adapters import their SDKs inside the call. So: import function_app; build the platform; then
follow the modules the function's code refers to (its handlers) and every import statement in them,
module level or inside a function (the adapters' lazy imports), through every project module reached,
until nothing new is imported. Prints one JSON object: the times, the modules reached, and which of the
heavy numeric packages got imported (and by which import). Used by bench/package.py and
tests/test_function_app_slim.py."""
from __future__ import annotations

import ast
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

# The app to walk: this project, or a built package of it (bench/package.py sets FUNCTION_APP_ROOT).
ROOT = Path(os.environ.get("FUNCTION_APP_ROOT") or Path(__file__).resolve().parents[1]).resolve()
HEAVY = ("numpy", "pandas", "scipy", "sklearn", "fairlearn", "pyarrow")
SDKS = ("azure.storage.blob", "azure.identity", "azure.eventgrid", "azure.ai.ml", "azure.monitor.query",
        "azure.monitor.querymetrics")
# Bootstrap's other branch: reached only in the local configuration.
LOCAL_ONLY = ("lifecycle.adapters.local_ml",)


def project_module(module: ModuleType | None, root: Path = ROOT) -> bool:
    path = getattr(module, "__file__", None)
    if not path or getattr(module, "__name__", "") in ("__main__", "__mp_main__"):
        return False
    path = Path(path).resolve()
    return root in path.parents and not any(part.startswith(".") for part in path.relative_to(root).parts)


def referenced_modules(code: CodeType, scope: dict) -> set[str]:
    """The project modules whose functions, classes or selves a function's code refers to."""
    found = set()
    for name in code.co_names:
        value = scope.get(name)
        module = value if isinstance(value, ModuleType) else sys.modules.get(getattr(value, "__module__", "") or "")
        if module is not None and project_module(module):
            found.add(module.__name__)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found |= referenced_modules(const, scope)
    return found


def imports_in(module: ModuleType) -> list[tuple[str, str | None]]:
    """(module, name or None) of every import statement in the module's source."""
    if module.__file__ is None:
        raise ValueError(f"module {module.__name__} has no source file to read its imports from")
    tree = ast.parse(Path(module.__file__).read_text())
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module != "__future__":
            found += [(node.module, alias.name) for alias in node.names]
    return found


def heavy_loaded() -> set[str]:
    return {name for name in HEAVY if name in sys.modules}


def walk(start: set[str], root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """Import everything reachable from the start modules; the modules walked and {heavy package: the import
    that brought it in}."""
    queue = sorted(start)
    walked: set[str] = set()
    culprits: dict[str, str] = {}
    while queue:
        name = queue.pop()
        if name in walked or name in LOCAL_ONLY:
            continue
        walked.add(name)
        for target, attribute in imports_in(sys.modules[name]):
            if target in LOCAL_ONLY or f"{target}.{attribute}" in LOCAL_ONLY:
                continue
            before = heavy_loaded()
            try:
                module = importlib.import_module(target)
                if attribute and not hasattr(module, attribute):
                    importlib.import_module(f"{target}.{attribute}")
            except ImportError:
                continue          # an optional import the code guards itself
            for package in heavy_loaded() - before:
                culprits.setdefault(package, f"{name}: {target}" + (f".{attribute}" if attribute else ""))
        queue += [m for m, mod in list(sys.modules.items()) if m not in walked and project_module(mod, root)]
    return sorted(walked), culprits


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    import function_app
    app_loaded = time.perf_counter()
    functions: dict[str, Callable[..., Any]] = {}
    for f in function_app.app.get_functions():
        name = f.get_function_name()
        if name is None:
            raise SystemExit(f"function_app has a function without a name: {f.get_user_function()}")
        functions[name] = f.get_user_function()
    wanted = list(functions) if argv == ["--all"] else argv
    unknown = [name for name in wanted if name not in functions]
    if not wanted or unknown:
        print(f"usage: python -m bench.function_imports FUNCTION | --all; functions: {', '.join(functions)}",
              file=sys.stderr)
        return 2
    from lifecycle.bootstrap import build_platform
    from lifecycle.settings import Settings
    platform = build_platform(Settings.from_env())
    # the adapters the platform holds (not the ports a stage leaves None, nor its tuple of models' policies)
    start = {"lifecycle.bootstrap"} | {type(adapter).__module__ for adapter in vars(platform).values()
                                       if project_module(sys.modules.get(type(adapter).__module__))}
    for name in wanted:
        user = functions[name]
        start |= referenced_modules(user.__code__, user.__globals__) | {user.__module__}
    walked, culprits = walk(start)
    done = time.perf_counter()
    print(json.dumps({"functions": wanted, "import_function_app_s": app_loaded - started,
                      "first_call_imports_s": done - app_loaded, "walked": walked, "heavy": culprits,
                      "azure_sdks": [m for m in SDKS if m in sys.modules], "modules_loaded": len(sys.modules)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
