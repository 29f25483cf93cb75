"""Reading the Bicep templates offline: pycep-parser's JSON of each file, and a small evaluator for the
expressions the checks need (property access, `.?`/`??`, `==`, `!`, `&&`, `||`, `filter` with a lambda,
`contains`, `empty`, `split`, loadJsonContent, string interpolation), with parameters bound to chosen values.
Anything else evaluates to UNKNOWN, which never equals an expected value."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA_VENV = ROOT / ".venv-infra"
INFRA_PYTHON = INFRA_VENV / "bin" / "python"
CHECKOV = INFRA_VENV / "bin" / "checkov"
UNKNOWN = object()


def require_infra_venv() -> None:
    if not INFRA_PYTHON.exists():
        raise AssertionError(f"{INFRA_VENV} is missing: `make .venv-infra/.installed` installs checkov and "
                             "pycep-parser there (make test does it first)")


def parse_all(infra: Path) -> dict[str, dict]:
    """{path relative to infra: pycep's template JSON, or {"error": ...}} for every .bicep file."""
    require_infra_venv()
    out = subprocess.run([str(INFRA_PYTHON), str(Path(__file__).with_name("parse_bicep.py")), str(infra)],
                         capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout)


class Template:
    """One parsed file, with its parameters' defaults and variables as the evaluation environment."""

    def __init__(self, parsed: dict, folder: Path) -> None:
        if "error" in parsed:
            raise AssertionError(parsed["error"])
        self.json, self.folder = parsed, folder
        self.params = parsed.get("parameters") or {}
        self.variables = {name: v["value"] for name, v in (parsed.get("variables") or {}).items()}
        self.resources = parsed.get("resources") or {}
        self.modules = parsed.get("modules") or {}
        self.outputs = parsed.get("outputs") or {}

    def env(self, **bound: Any) -> dict[str, Any]:
        env: dict[str, Any] = {name: _Lazy(self, expr, bound) for name, expr in self.variables.items()}
        env.update({name: p.get("default") for name, p in self.params.items() if p.get("default") is not None})
        env.update(bound)
        return env

    def evaluate(self, expr: Any, **bound: Any) -> Any:
        return evaluate(expr, self.env(**bound), self.folder)

    def resources_of(self, resource_type: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r["type"] == resource_type}


class _Lazy:
    """A variable, evaluated when first used (variables may refer to each other), with the same bound values."""

    def __init__(self, template: Template, expr: Any, bound: dict[str, Any]) -> None:
        self.template, self.expr, self.bound = template, expr, bound

    def value(self) -> Any:
        return evaluate(self.expr, self.template.env(**self.bound), self.template.folder)


def evaluate(expr: Any, env: dict[str, Any], folder: Path) -> Any:
    if isinstance(expr, str):
        if expr in env:
            value = env[expr]
            return value.value() if isinstance(value, _Lazy) else value
        return _interpolate(expr, env, folder)
    if isinstance(expr, list):
        return [evaluate(item, env, folder) for item in expr]
    if not isinstance(expr, dict):
        return expr
    if "loop_type" in expr and expr.get("condition") is None:          # [for x in array: {...}]
        detail = expr["loop_type"]["detail"]
        items = evaluate(detail["array_name"], env, folder)
        if not isinstance(items, list):
            return UNKNOWN
        return [evaluate(expr["config"], {**env, detail["item_name"]: item}, folder) for item in items]
    if "operator" in expr:
        op = expr["operator"]
        operands = op.get("operands") or {}
        if op["type"] == "property_accessor":
            return _access(evaluate(operands["operand_1"], env, folder), operands["operand_2"], env, folder)
        if op["type"] == "coalesce":
            left = evaluate(operands["operand_1"], env, folder)
            return left if left not in (None, UNKNOWN) else evaluate(operands["operand_2"], env, folder)
        if op["type"] == "equals":
            return evaluate(operands["operand_1"], env, folder) == evaluate(operands["operand_2"], env, folder)
        if op["type"] == "not":
            value = evaluate(operands.get("bool_value", operands.get("operand_1")), env, folder)
            return UNKNOWN if value is UNKNOWN else not value
        if op["type"] in ("and", "or"):
            values = [evaluate(operands[key], env, folder) for key in sorted(operands)]
            if any(v is UNKNOWN or not isinstance(v, bool) for v in values):
                return UNKNOWN
            return all(values) if op["type"] == "and" else any(values)
        return UNKNOWN
    if "function" in expr:
        fn = expr["function"]
        params = fn.get("parameters") or {}
        if fn["type"] == "load_json_content":
            return json.loads((folder / params["file_path"]).read_text())
        if fn["type"] == "filter":
            items = evaluate(params["input_array"], env, folder)
            lam = params["expression"]["detail"]
            if not isinstance(items, list):
                return UNKNOWN
            return [x for x in items if evaluate(lam["expression"], {**env, lam["var_1"]: x}, folder) is True]
        if fn["type"] == "concat":
            parts = [evaluate(params[key], env, folder) for key in sorted(params, key=lambda k: int(k.split("_")[1]))]
            return [x for part in parts for x in part] if all(isinstance(p, list) for p in parts) else UNKNOWN
        if fn["type"] == "contains":
            container, item = (evaluate(params["container"], env, folder),
                               evaluate(params["item_to_find"], env, folder))
            return UNKNOWN if UNKNOWN in (container, item) or container is None else item in container
        if fn["type"] == "empty":
            value = evaluate(params["item_to_test"], env, folder)
            return UNKNOWN if value is UNKNOWN else value in (None, "", [], {})
        if fn["type"] == "split":
            text, sep = (evaluate(params.get("input_string"), env, folder),
                         evaluate(params.get("delimiter"), env, folder))
            return text.split(sep) if isinstance(text, str) and isinstance(sep, str) else UNKNOWN
        return UNKNOWN
    return {key: evaluate(value, env, folder) for key, value in expr.items()}


def _access(base: Any, member: Any, env: dict, folder: Path) -> Any:
    # pycep nests a chain a.b.c as accessor(a, accessor(b, c)) and puts `??` and `==` inside the chain.
    if isinstance(member, str):
        return base.get(member) if isinstance(base, dict) else UNKNOWN if base is UNKNOWN else None
    op = member.get("operator", {}) if isinstance(member, dict) else {}
    operands = op.get("operands") or {}
    if op.get("type") == "property_accessor":
        return _access(_access(base, operands["operand_1"], env, folder), operands["operand_2"], env, folder)
    if op.get("type") == "coalesce":
        left = _access(base, operands["operand_1"], env, folder)
        return left if left not in (None, UNKNOWN) else evaluate(operands["operand_2"], env, folder)
    if op.get("type") == "equals":
        return _access(base, operands["operand_1"], env, folder) == evaluate(operands["operand_2"], env, folder)
    return UNKNOWN


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


def _interpolate(text: str, env: dict, folder: Path) -> str:
    """'${s.function}' parts whose name is bound are filled in; the rest (e.g. ${site.id}) are kept as written."""
    def fill(match: re.Match) -> str:
        head, *path = match[1].split(".")
        if head not in env:
            return match[0]
        value = env[head].value() if isinstance(env[head], _Lazy) else env[head]
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return match[0] if value is None else str(value)
    return _INTERPOLATION.sub(fill, text)


def path_of(expr: Any) -> str:
    """'a.b.c' from pycep's nested property accessors (a plain name as it is)."""
    if isinstance(expr, str):
        return expr
    operands = expr["operator"]["operands"]
    return f"{path_of(operands['operand_1'])}.{path_of(operands['operand_2'])}"


def body_of(config: dict) -> dict:
    """A resource's or module's body: `= if (...) {...}` nests it under the condition."""
    return config["config"] if "condition" in config else config
