"""The Function App's package, built the way Core Tools' publish builds it: every file of the project that
.funcignore (gitignore syntax, applied with pathspec) leaves in. It must hold every project module the
function app imports, at load and inside its calls (the adapters' lazy imports), and the files the adapters
read or submit at run time, and nothing of the local stack, the tests, the tools or the infrastructure."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pathspec
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", ".amlignore",
                     "functions", "lifecycle", "monitoring", "training", "deployment"}
NEVER_SHIPPED = ("emulator/", "tests/", "bench/", "mlops/", "infra/", ".venv/", "node_modules/", ".git/", ".mlops/")
# specs the Azure adapters load from the package; each names the code folder Azure ML uploads with it
SPECS = ("training/job.yml", "monitoring/job.yml", "deployment/deployment.yml", "deployment/endpoint.yml")
MODELS_FILE = "mlops.yaml"       # the models file the app ships (MLOPS_CONFIG); it names the teams' specs


def funcignore() -> list[str]:
    return (ROOT / ".funcignore").read_text().splitlines()


def package(ignore: list[str]) -> set[str]:
    """Project files (relative, '/'-separated) left in by these rules."""
    return kept_files(ROOT, pathspec.GitIgnoreSpec.from_lines(ignore))


def kept_files(root: Path, spec: pathspec.PathSpec) -> set[str]:
    """Files under `root` (relative to the project) that `spec` leaves in. A folder it excludes is not
    entered: gitignore cannot take back a file below an excluded folder, so the result is the same."""
    kept = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else here + "/"
        dirs[:] = [d for d in dirs if not spec.match_file(f"{prefix}{d}/")]
        kept.update((Path(folder) / f).relative_to(ROOT).as_posix()
                    for f in files if not spec.match_file(f"{prefix}{f}"))
    return kept


def imported_modules(start: str = "function_app") -> dict[str, str]:
    """Project modules reached from `start` through every import statement, at module level or inside a
    function: {module: file relative to the project}."""
    def source(name: str) -> Path | None:
        base = ROOT.joinpath(*name.split("."))
        return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)

    found: dict[str, str] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        path = source(name) if name else None
        if path is None or name in found:
            continue
        found[name] = path.relative_to(ROOT).as_posix()
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]          # the packages it lives in
        package_name = name if path.name == "__init__.py" else ".".join(parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package_name.split(".")[: len(package_name.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                todo += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return found


def run_time_files() -> set[str]:
    """The specs the adapters load (ours, and the teams' that the models file names, with the component files
    they use), the models file, and everything in the code folders those specs upload to Azure ML."""
    needed = {MODELS_FILE}
    specs = list(SPECS)
    models = (yaml.safe_load((ROOT / MODELS_FILE).read_text()) or {}).get("models") or {}
    specs += [m["training"]["spec"] for m in models.values() if (m.get("training") or {}).get("spec")]
    while specs:
        spec = specs.pop()
        needed.add(spec)
        document = yaml.safe_load((ROOT / spec).read_text()) or {}
        for job in [document, *(document.get("jobs") or {}).values()]:
            component = job.get("component")
            if isinstance(component, str) and component.removeprefix("file:").endswith((".yml", ".yaml")):
                specs.append((Path(spec).parent / component.removeprefix("file:")).as_posix())
            code = job.get("code") or (job.get("code_configuration") or {}).get("code")
            if code:
                folder = (ROOT / spec).parent.joinpath(code).resolve()
                amlignore = folder / ".amlignore"          # what Azure ML leaves out of the upload
                rules = amlignore.read_text().splitlines() if amlignore.is_file() else []
                needed |= kept_files(folder, pathspec.GitIgnoreSpec.from_lines([*rules, "__pycache__/"]))
    return {Path(os.path.normpath(path)).as_posix() for path in needed}


def problems(ignore: list[str]) -> list[str]:
    shipped = package(ignore)
    found = [f"{module} ({path}) is imported by the function app but not in the package"
             for module, path in sorted(imported_modules().items()) if path not in shipped]
    found += [f"{path} is read or uploaded at run time but not in the package"
              for path in sorted(run_time_files() - shipped)]
    found += [f"{path} is in the package" for path in sorted(shipped)
              if path.startswith(NEVER_SHIPPED) or path.endswith(".md") or "__pycache__/" in path]
    needed_tops = PACKAGE_TOP_LEVEL | {path.split("/")[0] for path in run_time_files()}
    found += [f"{top} is in the package, but the app does not need it"
              for top in sorted({path.split("/")[0] for path in shipped} - needed_tops)]
    found += [f"{path} is in the package, but no spec uploads it" for path in sorted(shipped)
              if path.startswith("examples/") and path not in run_time_files()]
    return found


def test_the_walk_follows_imports_inside_calls():
    modules = imported_modules()
    # azure_jobs is imported only inside bootstrap's build_platform; the stand-in's module never is in Azure,
    # but the walk is static and keeps it: the package must hold both configurations' code
    assert {"functions.data_triggers", "lifecycle.bootstrap", "lifecycle.adapters.azure_jobs",
            "lifecycle.core.canary_stats"} <= set(modules)
    assert not any(name.startswith(("emulator", "tests", "bench", "mlops")) for name in modules), modules


def test_the_package_holds_what_the_app_needs_and_nothing_else():
    assert problems(funcignore()) == []


@pytest.mark.parametrize("change, complaint", [
    (lambda rules: rules + ["lifecycle/adapters/"],
     "lifecycle.adapters.azure_jobs (lifecycle/adapters/azure_jobs.py) is imported"),
    (lambda rules: rules + ["*.yml"], "training/job.yml is read or uploaded at run time"),
    (lambda rules: rules + ["examples/"], "examples/pipeline/pipeline.yml is read or uploaded at run time"),
    (lambda rules: [r for r in rules if r != "examples/command-job/"],
     "examples/command-job/job.yml is in the package, but no spec uploads it"),
    (lambda rules: [r for r in rules if r != "tests/"], "tests/conftest.py is in the package"),
    (lambda rules: [r for r in rules if r != "emulator/"], "emulator/stack.py is in the package"),
    (lambda rules: [r for r in rules if r != "*.md"], "README.md is in the package"),
    (lambda rules: [r for r in rules if r != "pyproject.toml"],
     "pyproject.toml is in the package, but the app does not need it"),
])
def test_a_broken_funcignore_is_caught(change, complaint):
    assert complaint in "\n".join(problems(change(funcignore())))
