"""Every .bicep file parses (pycep-parser), and checkov's Bicep checks pass on infra/ or are skipped in the
template with a reason (`// checkov:skip=ID: reason`). checkov exits 0 on a file it cannot parse, so its
`parsing_errors` are read too."""
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep import CHECKOV, parse_all, require_infra_venv
from tests.infra.conftest import INFRA, edit

EXPECTED = {"main.bicep", "subscriptions.bicep", "modules/function-app.bicep", "modules/roles.bicep",
            "modules/ml-workspace.bicep", "modules/online-endpoint.bicep", "modules/event-topics.bicep",
            "modules/storage.bicep", "modules/monitoring.bicep", "modules/identity.bicep"}


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
    return report[0] if isinstance(report, list) else report


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
