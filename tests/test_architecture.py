"""The layering, read from the source's imports and calls (README, "Architecture"):

- lifecycle/core/ is pure: it reads no clock and knows no settings, platform, adapters, handlers or steps;
- handlers never import handlers (shared use cases live in lifecycle/steps/, which import each other
  without a cycle);
- no import cycle between the top-level packages."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions", "lifecycle", "emulator", "mlops", "monitoring", "training", "deployment", "bench")
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
               ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("clock", "now")}
CLOCK_NAMES = {"utcnow", "now", "monotonic", "perf_counter"}      # imported bare: `from time import monotonic`
NOT_IN_CORE = ("lifecycle.settings", "lifecycle.ports", "lifecycle.bootstrap", "lifecycle.clock", "lifecycle.dispatch",
               "lifecycle.adapters", "lifecycle.handlers", "lifecycle.steps")


def imports(tree: ast.AST) -> list[tuple[str, tuple[str, ...]]]:
    """(module, names imported from it) for every import, at module level or inside a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


def clock_reads(tree: ast.AST) -> list[str]:
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in CLOCK_CALLS:
                reads.append(f"line {node.lineno}: {name}.{node.func.attr}()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLOCK_NAMES:
            reads.append(f"line {node.lineno}: {node.func.id}()")
    return reads


def impurities(source: str) -> list[str]:
    """Why a core module is not pure (empty if it is)."""
    tree = ast.parse(source)
    found = clock_reads(tree)
    for module, names in imports(tree):
        if module.startswith(NOT_IN_CORE):
            found.append(f"imports {module}")
        found += [f"imports {name} from {module}" for name in names if name in {"Settings", "Platform", "utcnow"}]
    return found


def modules(folder: str) -> dict[str, Path]:
    return {".".join(path.relative_to(ROOT).with_suffix("").parts): path
            for path in sorted((ROOT / folder).rglob("*.py"))}


def test_the_purity_check_finds_a_clock_read_a_setting_and_a_platform():
    assert impurities("from datetime import datetime\ndef f():\n    return datetime.now()\n")
    assert impurities("import datetime\ndef f():\n    return datetime.datetime.utcnow()\n")
    assert impurities("from lifecycle.settings import Settings\n")
    assert impurities("def f():\n    from lifecycle.ports import Platform\n")
    assert impurities("from lifecycle.clock import utcnow\n")
    assert not impurities("from datetime import datetime\ndef f(now: datetime):\n    return now.isoformat()\n")


@pytest.mark.parametrize("module", sorted(modules("lifecycle/core")))
def test_the_core_reads_no_clock_no_settings_and_no_platform(module):
    path = modules("lifecycle/core")[module]
    assert impurities(path.read_text()) == [], f"{module} is not pure"


def test_handlers_never_import_handlers():
    for module, path in modules("lifecycle/handlers").items():
        others = [m for m, _ in imports(ast.parse(path.read_text())) if m.startswith("lifecycle.handlers")]
        assert others == [], f"{module} imports {others}: put what they share in lifecycle/steps/"


def test_steps_import_each_other_without_a_cycle():
    graph = {module: {m for m, _ in imports(ast.parse(path.read_text()))
                      if m.startswith("lifecycle.steps.") and m != module}
             for module, path in modules("lifecycle/steps").items()}
    assert cycle(graph) is None, f"steps import each other in a cycle: {cycle(graph)}"
    handlers = [m for module, path in modules("lifecycle/steps").items()
                for m, _ in imports(ast.parse(path.read_text())) if m.startswith("lifecycle.handlers")]
    assert handlers == [], "steps are used by handlers, never the other way"


def test_no_import_cycle_between_the_top_level_packages():
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for module, _ in imports(ast.parse(path.read_text())):
                top = module.split(".")[0]
                if top in graph and top != package:
                    graph[package].add(top)
    assert cycle(graph) is None, f"the packages import each other in a cycle: {cycle(graph)}"
    # the direction that matters most: the monitoring and training jobs run without the function app
    assert "lifecycle" not in graph["monitoring"] | graph["training"]


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for neighbour in sorted(graph.get(node, ())):
            found = visit(neighbour, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None
