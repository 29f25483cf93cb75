import shutil
from pathlib import Path

import pytest

from tests.infra.bicep import ROOT, Template, parse_all

INFRA = ROOT / "infra"


@pytest.fixture(scope="session")
def parsed_infra() -> dict[str, dict]:
    """pycep's JSON of every .bicep file in infra/ (parsed once per session)."""
    return parse_all(INFRA)


@pytest.fixture(scope="session")
def templates(parsed_infra) -> dict[str, Template]:
    return {path: Template(parsed, (INFRA / path).parent) for path, parsed in parsed_infra.items()}


@pytest.fixture
def infra_copy(tmp_path) -> Path:
    """A copy of infra/ to break on purpose: the checks must fail on it."""
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def templates_of(infra: Path) -> dict[str, Template]:
    return {path: Template(parsed, (infra / path).parent) for path, parsed in parse_all(infra).items()}


def app_functions() -> dict:
    """{name: function} of function_app.app, as the Functions host indexes them."""
    from function_app import app
    app.functions_bindings = None   # get_functions() refuses a second call on the same app object otherwise
    return {fn.get_function_name(): fn for fn in app.get_functions()}
