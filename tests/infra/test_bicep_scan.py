"""Every .bicep file parses (pycep-parser), and checkov's Bicep checks pass on infra/ or are skipped in the
template with a reason (`// checkov:skip=ID: reason`). checkov exits 0 on a file it cannot parse, so its
`parsing_errors` are read too."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import CHECKOV, parse_all, require_infra_venv
from tests.infra.conftest import INFRA, edit

EXPECTED = {"main.bicep", "subscriptions.bicep", "modules/function-app.bicep", "modules/roles.bicep",
            "modules/ml-workspace.bicep", "modules/online-endpoint.bicep", "modules/event-topics.bicep",
            "modules/storage.bicep", "modules/monitoring.bicep", "modules/identity.bicep",
            "registry.bicep", "modules/ml-registry.bicep", "modules/registry-roles.bicep"}
# The shared registry's own deployment (infra/registry.bicep) and what it and the environments deploy with it.
REGISTRY_FILES = ("registry.bicep", "modules/ml-registry.bicep", "modules/registry-roles.bicep")


def unparsed(parsed: dict[str, dict]) -> dict[str, str]:
    return {path: p["error"] for path, p in parsed.items() if "error" in p}


def test_every_bicep_file_parses(parsed_infra):
    assert set(parsed_infra) >= EXPECTED, f"missing templates: {EXPECTED - set(parsed_infra)}"
    assert unparsed(parsed_infra) == {}


def test_a_file_that_does_not_parse_is_reported(infra_copy):
    edit(infra_copy / "modules/identity.bicep", "output id string = identity.id", "output id string = identity.id }")
    assert set(unparsed(parse_all(infra_copy))) == {"modules/identity.bicep"}


def checkov(infra: Path) -> dict:
    require_infra_venv()
    out = subprocess.run([str(CHECKOV), "-d", str(infra), "--framework", "bicep", "--skip-download", "-o", "json"],
                         capture_output=True, text=True, timeout=600)
    report = json.loads(out.stdout)
    report = report[0] if isinstance(report, list) else report
    # with no check that applies to any resource, checkov prints only a summary
    return report if "results" in report else {"summary": report, "results": {"failed_checks": [],
                                                                              "skipped_checks": []}}


def problems(report: dict) -> list[str]:
    found = [f"{c['check_id']} {c['check_name']}: {c['file_path']} {c['resource']}"
             for c in report["results"]["failed_checks"]]
    found += [f"parsing error: {path}" for path in report["results"].get("parsing_errors", [])]
    found += [f"{c['check_id']} skipped without a reason: {c['file_path']} {c['resource']}"
              for c in report["results"]["skipped_checks"]
              if len((c.get("check_result") or {}).get("suppress_comment", "").strip()) < 20]
    return found


@pytest.mark.slow      # checkov in its own venv
def test_checkov_finds_nothing_unexplained():
    report = checkov(INFRA)
    assert report["summary"]["resource_count"] > 50, "checkov read too few resources: did it parse the templates?"
    assert problems(report) == []


@pytest.mark.slow      # checkov in its own venv
def test_checkov_reports_an_unexplained_skip_and_a_parse_error(infra_copy):
    # A skip whose reason is gone is a failure, and so is a template checkov cannot read (it still exits 0).
    storage = infra_copy / "modules/storage.bicep"
    storage.write_text(re.sub(r"// checkov:skip=CKV_AZURE_206:.*", "// checkov:skip=CKV_AZURE_206",
                              storage.read_text()))
    (infra_copy / "modules/broken.bicep").write_text("resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n")
    found = problems(checkov(infra_copy))
    assert any(p.startswith("CKV_AZURE_206 skipped without a reason") for p in found), found
    assert any(p.startswith("parsing error") and "broken.bicep" in p for p in found), found


def registry_alone(tmp_path: Path) -> Path:
    folder = tmp_path / "registry-infra"
    for name in REGISTRY_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(INFRA / name, folder / name)
    return folder


@pytest.mark.slow      # checkov in its own venv
def test_checkov_finds_nothing_in_the_registry_templates(tmp_path):
    # checkov 3.3.30 has no check for Microsoft.MachineLearningServices/registries nor for role assignments: this
    # shows that it reads the registry's templates and fails nothing in them (a broken file beside them shows the
    # scan ran over the folder; test_environments checks the registry's content).
    folder = registry_alone(tmp_path)
    (folder / "modules/broken.bicep").write_text("resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n")
    assert problems(checkov(folder)) == [f"parsing error: {folder / 'modules/broken.bicep'}"]
