"""The CI/CD files, offline: the GitHub workflows (.github/workflows/) and azure-pipelines.yml match their
schemas (check-jsonschema's vendored ones), pass checkov with the project's own rules (infra/checks/), and do
what the README says they do. Planted files prove that each validator and each rule really runs: a broken
file fails check-jsonschema, and a secret-based Azure sign-in, a missing `id-token: write`, an unpinned action,
a cancellable deployment or an Azure job outside an environment fails checkov with that rule's id.

checkov leaves out a file it cannot read and exits 0 on it, so every assertion is on the check ids and files
in its JSON report (`-o json`), never on its exit code alone. Both tools run with a dead proxy: neither may
need the network."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import CHECKOV, INFRA_VENV, ROOT, require_infra_venv

CHECK_JSONSCHEMA = INFRA_VENV / "bin" / "check-jsonschema"
WORKFLOWS = ROOT / ".github" / "workflows"
SCRIPTS = ROOT / ".github" / "scripts"
PIPELINE = ROOT / "azure-pipelines.yml"
CUSTOM_CHECKS = ROOT / "infra" / "checks"

WORKFLOW_FILES = {"ci.yml", "deploy-dev.yml", "train.yml", "promote-preprod.yml", "promote-prod.yml"}
AZURE_WORKFLOWS = {"deploy-dev.yml": "dev", "train.yml": "dev", "promote-preprod.yml": "preprod",
                   "promote-prod.yml": "prod"}
GITHUB_RULES = {"CKV_MLOPS_1", "CKV_MLOPS_2", "CKV_MLOPS_3", "CKV_MLOPS_4", "CKV_MLOPS_5"}
PIPELINE_RULES = {"CKV_MLOPS_6", "CKV_MLOPS_7"}
PIPELINE_STAGES = {"Dev": "mlops-dev", "Train": "mlops-dev", "Preprod": "mlops-preprod", "Prod": "mlops-prod"}

GITHUB_SCHEMA = ["--builtin-schema", "vendor.github-workflows"]
# the same options as check-jsonschema's own check-azure-pipelines hook: ${{ }} template expressions as keys, and
# the schema's patterns in non-unicode mode (in unicode mode regress rejects some of their escapes)
PIPELINE_SCHEMA = ["--builtin-schema", "vendor.azure-pipelines", "--data-transform", "azure-pipelines",
                   "--regex-variant", "nonunicode"]
OFFLINE = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


# ---------------------------------------------------------------------------------------------- the tools

def check_jsonschema(schema: list[str], *files: Path) -> subprocess.CompletedProcess:
    require_infra_venv()
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} is missing: `make .venv-infra/.installed` installs it"
    return subprocess.run([str(CHECK_JSONSCHEMA), *schema, *map(str, files)], capture_output=True, text=True,
                          timeout=300, env=OFFLINE)


def checkov(framework: str, *target: str) -> list[dict[str, Any]]:
    """checkov's results as [{status, id, file, resource, suppress}], with our checks loaded; a parsing error is
    a result too."""
    require_infra_venv()
    out = subprocess.run([str(CHECKOV), "--framework", framework, *target, "--external-checks-dir",
                          str(CUSTOM_CHECKS), "--skip-download", "-o", "json"],
                         capture_output=True, text=True, timeout=600, env=OFFLINE)
    assert out.stdout.strip(), f"checkov printed nothing: {out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    report = report[0] if isinstance(report, list) else report
    assert "Traceback" not in out.stderr, out.stderr[-3000:]   # e.g. a custom check that raised
    found = [{"status": status.removesuffix("_checks"), "id": c["check_id"], "file": c["file_path"],
              "resource": c["resource"], "suppress": (c.get("check_result") or {}).get("suppress_comment", "")}
             for status in ("passed_checks", "failed_checks", "skipped_checks")
             for c in (report.get("results") or {}).get(status, [])]
    found += [{"status": "parsing_error", "id": "", "file": path, "resource": "", "suppress": ""}
              for path in (report.get("results") or {}).get("parsing_errors", [])]
    return found


def of(results: list[dict], status: str | None = None, file: str | None = None, rules: set[str] | None = None) -> list:
    return [r for r in results if (status is None or r["status"] == status)
            and (file is None or Path(r["file"]).name == file or r["file"].endswith("/" + file))
            and (rules is None or r["id"] in rules)]


def ids(results: list[dict]) -> set[str]:
    return {r["id"] for r in results}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:                                  # YAML 1.1 reads a bare `on:` as the boolean true
        doc["on"] = doc.pop(True)
    return doc


def workflow(name: str) -> dict[str, Any]:
    return load(WORKFLOWS / name)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps") or []


# ------------------------------------------------------------------------------- the schemas (check-jsonschema)

def test_the_workflows_are_all_there():
    assert {p.name for p in WORKFLOWS.glob("*.y*ml")} == WORKFLOW_FILES
    assert PIPELINE.exists()


@pytest.mark.slow      # check-jsonschema in the infra venv
def test_the_workflows_match_the_github_workflow_schema():
    out = check_jsonschema(GITHUB_SCHEMA, *sorted(WORKFLOWS.glob("*.yml")))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok -- validation done" in out.stdout


@pytest.mark.slow
def test_the_pipeline_matches_the_azure_pipelines_schema():
    out = check_jsonschema(PIPELINE_SCHEMA, PIPELINE)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok -- validation done" in out.stdout


BROKEN_WORKFLOWS = {
    # name: (the file, what check-jsonschema says of it)
    # not YAML at all: the job's keys are indented under nothing
    "unparsable.yml": ("name: x\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n   steps:\n      - run: make\n",
                       "ParserError"),
    # YAML, but not a workflow: `step:` for `steps:` and a job without runs-on
    "misspelt.yml": ("name: x\non: push\npermissions: {}\njobs:\n  build:\n    step:\n      - run: make test\n",
                     "'runs-on' is a required property"),
    # an event GitHub does not have
    "bad-trigger.yml": ("name: x\non: pushed\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
                        "      - run: make test\n", "'pushed' is not one of"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BROKEN_WORKFLOWS))
def test_check_jsonschema_rejects_a_broken_workflow(tmp_path, name):
    text, said = BROKEN_WORKFLOWS[name]
    (tmp_path / name).write_text(text)
    good = tmp_path / "good.yml"
    shutil.copy(WORKFLOWS / "ci.yml", good)
    out = check_jsonschema(GITHUB_SCHEMA, good, tmp_path / name)
    assert out.returncode == 1, out.stdout + out.stderr
    report = out.stdout + out.stderr
    assert said in report and "good.yml" not in report, report     # the broken file, for its fault, and only it


@pytest.mark.slow
def test_check_jsonschema_rejects_a_broken_pipeline(tmp_path):
    broken = tmp_path / "azure-pipelines.yml"
    broken.write_text(PIPELINE.read_text().replace("  - stage: Train\n", "  - stages: Train\n", 1))
    out = check_jsonschema(PIPELINE_SCHEMA, broken)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "azure-pipelines.yml::$" in out.stdout and "'stages'" in out.stdout, out.stdout


# ------------------------------------------------------------------------------- checkov and our rules

@pytest.fixture(scope="module")
def workflow_results() -> list[dict]:
    return checkov("github_actions", "-d", str(WORKFLOWS))


@pytest.mark.slow
def test_checkov_reads_every_workflow_and_finds_nothing(workflow_results):
    assert {Path(r["file"]).name for r in workflow_results} == WORKFLOW_FILES, "checkov did not read them all"
    assert of(workflow_results, "parsing_error") == []
    assert of(workflow_results, "failed") == []
    unexplained = [r for r in of(workflow_results, "skipped") if len(r["suppress"].strip()) < 20]
    assert unexplained == [], "a skip needs its reason: # checkov:skip=ID: why"


@pytest.mark.slow
def test_our_rules_ran_on_each_workflow(workflow_results):
    passed = of(workflow_results, "passed", rules=GITHUB_RULES)
    assert ids(passed) == GITHUB_RULES
    for name in WORKFLOW_FILES:
        mine = of(passed, file=name)
        azure = name in AZURE_WORKFLOWS
        # CKV_MLOPS_1 looks at the azure/login steps only, 2 and 5 at the workflows that sign in or deploy
        assert ids(mine) == (GITHUB_RULES if azure else {"CKV_MLOPS_3", "CKV_MLOPS_4"}), name
        jobs = load(WORKFLOWS / name)["jobs"]
        assert {r["resource"] for r in of(mine, rules={"CKV_MLOPS_3"})} == {f"jobs({job})" for job in jobs}
        logins = [r["resource"] for r in of(mine, rules={"CKV_MLOPS_1"})]
        assert len(logins) == (1 if azure else 0) and all("Sign in to Azure" in r for r in logins), logins


def good_workflow(**change: str) -> str:
    """A deployment workflow that passes every rule, with parts replaced by `change`."""
    parts = {
        "workflow_permissions": "permissions: {}",
        "job_permissions": "permissions:\n      id-token: write\n      contents: read",
        "concurrency": "concurrency:\n      group: deploy\n      cancel-in-progress: false",
        "checkout": "actions/checkout@v4",
        "login": "client-id: ${{ vars.AZURE_CLIENT_ID }}\n          tenant-id: ${{ vars.AZURE_TENANT_ID }}\n"
                 "          subscription-id: ${{ vars.AZURE_SUBSCRIPTION_ID }}",
    } | change
    text = textwrap.dedent("""\
        name: planted
        on:
          push:
            branches: [main]
        {workflow_permissions}
        jobs:
          deploy:
            runs-on: ubuntu-latest
            environment: dev
            {concurrency}
            {job_permissions}
            steps:
              - uses: {checkout}
              - name: Sign in to Azure
                uses: azure/login@v2
                with:
                  {login}
              - run: az group list
        """)
    return text.format(**parts)


PLANTED = {
    # name: (the workflow, the rules it must fail; every other rule that applies must pass)
    "good.yml": (good_workflow(), set()),
    "secret-creds.yml": (good_workflow(login="creds: ${{ secrets.AZURE_CREDENTIALS }}"), {"CKV_MLOPS_1"}),
    "secret-client-secret.yml": (good_workflow(login="client-id: ${{ vars.AZURE_CLIENT_ID }}\n"
                                                     "          tenant-id: ${{ vars.AZURE_TENANT_ID }}\n"
                                                     "          client-secret: ${{ secrets.AZURE_CLIENT_SECRET }}"),
                                 {"CKV_MLOPS_1"}),
    "secret-ids.yml": (good_workflow(login="client-id: ${{ secrets.AZURE_CLIENT_ID }}\n"
                                           "          tenant-id: ${{ secrets['AZURE_TENANT_ID'] }}"), {"CKV_MLOPS_1"}),
    "no-id-token.yml": (good_workflow(job_permissions="permissions:\n      contents: read"), {"CKV_MLOPS_2"}),
    # the job's own permissions replace the workflow's: its id-token: write does not reach the job
    "job-drops-id-token.yml": (good_workflow(workflow_permissions="permissions:\n  id-token: write\n  contents: read",
                                             job_permissions="permissions:\n      contents: read"), {"CKV_MLOPS_2"}),
    # a job without permissions has the workflow's: the token is granted, but the job declares nothing itself
    "workflow-id-token.yml": (good_workflow(workflow_permissions="permissions:\n  id-token: write\n  contents: read",
                                            job_permissions=""), {"CKV_MLOPS_3"}),
    "write-all.yml": (good_workflow(job_permissions="permissions: write-all"), {"CKV_MLOPS_3"}),
    "unpinned.yml": (good_workflow(checkout="actions/checkout@main"), {"CKV_MLOPS_4"}),
    "cancels-deployments.yml": (good_workflow(concurrency="concurrency:\n      group: deploy\n"
                                                          "      cancel-in-progress: true"), {"CKV_MLOPS_5"}),
    "no-concurrency.yml": (good_workflow(concurrency=""), {"CKV_MLOPS_5"}),
}


@pytest.fixture(scope="module")
def planted_results(tmp_path_factory) -> list[dict]:
    """checkov once over all the planted workflows (it reads only files under a .github/workflows/ folder)."""
    folder = tmp_path_factory.mktemp("planted") / ".github" / "workflows"
    folder.mkdir(parents=True)
    for name, (text, _) in PLANTED.items():
        (folder / name).write_text(text)
    return checkov("github_actions", "-d", str(folder))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLANTED))
def test_a_planted_workflow_fails_exactly_its_rule(planted_results, name):
    text, failing = PLANTED[name]
    mine = of(planted_results, file=name, rules=GITHUB_RULES)
    assert mine, f"checkov did not read {name}"
    assert ids(of(mine, "failed")) == failing, mine
    # the other rules ran on it and passed: the failure is the planted fault's, not a file checkov misread
    assert ids(of(mine, "passed")) - failing == GITHUB_RULES - failing, mine


@pytest.mark.slow
def test_the_planted_workflows_are_valid_workflows(tmp_path):
    # so that the failures above are the rules', not files GitHub would refuse anyway
    for name, (text, _) in PLANTED.items():
        (tmp_path / name).write_text(text)
    out = check_jsonschema(GITHUB_SCHEMA, *sorted(tmp_path.iterdir()))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_checkov_passes_the_pipeline_with_our_rules():
    results = checkov("azure_pipelines", "-f", str(PIPELINE))
    assert of(results, "failed") == [] and of(results, "parsing_error") == []
    passed = of(results, "passed", rules=PIPELINE_RULES)
    signing_in = {f"stages[{i}]({stage['stage']}).jobs[0]" for i, stage in enumerate(load(PIPELINE)["stages"])
                  if stage["stage"] in PIPELINE_STAGES}
    for rule in PIPELINE_RULES:        # on each job that signs in to Azure, and on no other
        assert {r["resource"] for r in of(passed, rules={rule})} == signing_in, rule


def planted_pipeline(job: str) -> str:
    return "trigger: none\npool:\n  vmImage: ubuntu-latest\nstages:\n  - stage: Deploy\n    jobs:\n" + \
        textwrap.indent(textwrap.dedent(job), " " * 6)


AZURE_CLI = """\
    - task: AzureCLI@2
      inputs:
        azureSubscription: mlops-dev
        scriptType: bash
        scriptLocation: inlineScript
        {extra}inlineScript: {script}
"""


def deployment(step: str) -> str:
    return "- deployment: Deploy\n  environment: mlops-dev\n  strategy:\n    runOnce:\n      deploy:\n" \
           "        steps:\n" + textwrap.indent(step, " " * 6)


PLANTED_PIPELINES = {
    "good": (deployment(AZURE_CLI.format(extra="", script="az group list")), set()),
    "plain-job": ("- job: Deploy\n  steps:\n" + AZURE_CLI.format(extra="", script="az group list"), {"CKV_MLOPS_7"}),
    "spn-in-env": (deployment(AZURE_CLI.format(extra="addSpnToEnvironment: true\n        ", script="az group list")),
                   {"CKV_MLOPS_6"}),
    "az-login-secret": (deployment(AZURE_CLI.format(
        extra="", script="az login --service-principal -u $(clientId) -p $(clientSecret) --tenant $(tenantId)")),
        {"CKV_MLOPS_6"}),
    "script-login": ("- job: Deploy\n  steps:\n"
                     "    - script: az login --service-principal -u x -p $(AZURE_PASSWORD) -t y\n", {"CKV_MLOPS_6"}),
}


@pytest.fixture(scope="module")
def planted_pipeline_results(tmp_path_factory) -> list[dict]:
    root = tmp_path_factory.mktemp("pipelines")
    for name, (job, _) in PLANTED_PIPELINES.items():
        (root / name).mkdir()
        (root / name / "azure-pipelines.yml").write_text(planted_pipeline(job))
    return checkov("azure_pipelines", "-d", str(root))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PLANTED_PIPELINES))
def test_a_planted_pipeline_fails_exactly_its_rule(planted_pipeline_results, name):
    _, failing = PLANTED_PIPELINES[name]
    mine = [r for r in planted_pipeline_results if f"/{name}/" in r["file"] and r["id"] in PIPELINE_RULES]
    assert mine, f"checkov did not read {name}"
    assert ids(of(mine, "failed")) == failing, mine
    if name != "script-login":          # no service connection there: CKV_MLOPS_7 has nothing to look at
        assert ids(of(mine, "passed")) == PIPELINE_RULES - failing, mine


@pytest.mark.slow
def test_the_planted_pipelines_are_valid_pipelines(tmp_path):
    paths = []
    for name, (job, _) in PLANTED_PIPELINES.items():
        paths.append(tmp_path / name / "azure-pipelines.yml")
        paths[-1].parent.mkdir()
        paths[-1].write_text(planted_pipeline(job))
    out = check_jsonschema(PIPELINE_SCHEMA, *paths)
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------------------------- what the workflows do

def test_ci_lints_and_tests_every_pull_request_and_push():
    ci = workflow("ci.yml")
    assert "pull_request" in ci["on"] and "push" in ci["on"]
    runs = [step.get("run") for job in ci["jobs"].values() for step in steps(job)]
    assert "make lint" in runs and "make test" in runs


def azure_login(job: dict[str, Any]) -> dict[str, Any]:
    (login,) = [step for step in steps(job) if str(step.get("uses", "")).lower().startswith("azure/login@")]
    return login


@pytest.mark.parametrize("name", sorted(AZURE_WORKFLOWS))
def test_each_azure_job_signs_in_with_oidc_in_its_environment(name):
    (job,) = workflow(name)["jobs"].values()
    assert job["environment"] == AZURE_WORKFLOWS[name]
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert job["concurrency"]["cancel-in-progress"] is False
    login = azure_login(job)
    assert login["uses"] == "azure/login@v2"
    assert login["with"] == {key: f"${{{{ vars.{var} }}}}" for key, var in (
        ("client-id", "AZURE_CLIENT_ID"), ("tenant-id", "AZURE_TENANT_ID"),
        ("subscription-id", "AZURE_SUBSCRIPTION_ID"))}


def test_no_workflow_reads_a_secret():
    for path in WORKFLOWS.glob("*.yml"):
        assert not re.search(r"\bsecrets\s*[.\[]", path.read_text()), path.name


def test_dev_deploys_on_every_push_to_main():
    dev = workflow("deploy-dev.yml")
    assert dev["on"]["push"]["branches"] == ["main"]
    (job,) = dev["jobs"].values()
    assert ".github/scripts/deploy.sh dev" in [step.get("run") for step in steps(job)]


def test_a_change_to_training_submits_a_training_job_in_dev():
    train = workflow("train.yml")
    assert train["on"]["push"] == {"branches": ["main"], "paths": ["training/**"]}
    (job,) = train["jobs"].values()
    script = "\n".join(step.get("run", "") for step in steps(job))
    assert "az ml job create --file training/job.ci.yml" in script
    assert "infra/environments/dev.parameters.json" in job["env"]["PARAMS"]


@pytest.mark.parametrize("stage", ["preprod", "prod"])
def test_promotions_are_started_by_hand_and_approved_in_their_environment(stage):
    promote = workflow(f"promote-{stage}.yml")
    assert set(promote["on"]) == {"workflow_dispatch"}
    (job,) = promote["jobs"].values()
    assert job["environment"] == stage
    assert f".github/scripts/deploy.sh {stage}" in [step.get("run") for step in steps(job)]


def test_prod_can_approve_a_held_promotion_through_the_app():
    prod = workflow("promote-prod.yml")
    assert set(prod["on"]["workflow_dispatch"]["inputs"]) == {"model", "version"}
    (job,) = prod["jobs"].values()
    (approve,) = [step for step in steps(job) if "/approve" in step.get("run", "")]
    assert approve["if"] == "inputs.version != ''"                      # optional: deploy only without a version
    script = approve["run"]
    assert "az functionapp function keys list" in script and "--function-name promotion_review" in script
    assert "::add-mask::$key" in script
    assert '/api/promotions/$MODEL/$VERSION/approve?by=github:$GITHUB_ACTOR"' in script
    assert approve["env"] == {"MODEL": "${{ inputs.model }}", "VERSION": "${{ inputs.version }}"}   # not in the script
    # the route it calls is the app's
    source = (ROOT / "functions" / "promotion_triggers.py").read_text()
    assert 'route="promotions/{model}/{version}/{action}"' in source and "def promotion_review(" in source


def test_the_pipeline_has_the_same_stages_bound_to_environments():
    pipeline = load(PIPELINE)
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert set(stages) == {"Validate", *PIPELINE_STAGES}
    validate = "\n".join(step.get("script", "") for job in stages["Validate"]["jobs"] for step in job["steps"])
    assert "make lint" in validate and "make test" in validate
    for name, environment in PIPELINE_STAGES.items():
        (job,) = stages[name]["jobs"]
        assert "deployment" in job and job["environment"] == environment, name
        tasks = [step for step in job["strategy"]["runOnce"]["deploy"]["steps"] if "task" in step]
        assert {step["task"] for step in tasks} >= {"AzureCLI@2"}, name
        assert all(step["inputs"]["azureSubscription"] == "$(serviceConnection)" for step in tasks
                   if step["task"] == "AzureCLI@2")
        assert stages[name]["variables"]["serviceConnection"] == environment
    deploy_scripts = {name: "\n".join(step.get("inputs", {}).get("inlineScript", "")
                                      for step in stages[name]["jobs"][0]["strategy"]["runOnce"]["deploy"]["steps"])
                      for name in ("Dev", "Preprod", "Prod")}
    for name, script in deploy_scripts.items():
        assert f".github/scripts/deploy.sh {name.lower()}" in script
    assert "az ml job create" in "\n".join(step.get("inputs", {}).get("inlineScript", "") for step in
                                           stages["Train"]["jobs"][0]["strategy"]["runOnce"]["deploy"]["steps"])
    assert "/approve?by=" in deploy_scripts["Prod"] and "az functionapp function keys list" in deploy_scripts["Prod"]


# ------------------------------------------------------------------------------- the scripts they run

def scripts() -> dict[str, str]:
    """Every shell script the workflows and the pipeline run, with ${{ }} expressions blanked."""
    found = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_name, job in workflow(path.name)["jobs"].items():
            for i, step in enumerate(steps(job)):
                if "run" in step:
                    found[f"{path.name} {job_name} step {i}"] = step["run"]

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            if str(value.get("task", "")).startswith("AzureCLI@") or "script" in value:
                text = value.get("script") or value.get("inputs", {}).get("inlineScript", "")
                found[f"azure-pipelines.yml {where} {value.get('displayName', '')}"] = text
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(load(PIPELINE)["stages"], "stages")
    found[".github/scripts/deploy.sh"] = (SCRIPTS / "deploy.sh").read_text()
    return {where: re.sub(r"\$\{\{.*?\}\}", "x", text) for where, text in found.items()}


def test_every_script_is_valid_bash():
    for where, text in scripts().items():
        out = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"{where}: {out.stderr}"


def test_the_files_the_scripts_name_exist():
    every = "\n".join(scripts().values())
    for path in sorted(set(re.findall(r"(?:\.github/scripts|infra|training)/[\w./-]+\.(?:sh|py|json|bicep|yml)",
                                      every))):
        if path.endswith("job.ci.yml"):      # written by training_job.py
            continue
        assert (ROOT / path).exists(), path
    for stage in ("dev", "preprod", "prod", "registry"):
        assert (ROOT / "infra" / "environments" / f"{stage}.parameters.json").exists()
    assert os.access(SCRIPTS / "deploy.sh", os.X_OK)


def training_job():
    spec = importlib.util.spec_from_file_location("training_job", SCRIPTS / "training_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_job_is_the_apps_own():
    module = training_job()
    spec = yaml.safe_load((ROOT / "training" / "job.yml").read_text())
    first = module.job_spec(spec, "tabular-classifier", "label", commit="0123456789abcdef")
    assert "champion_model" not in first["command"] and "$[[" not in first["command"]
    assert "champion_model" not in first["inputs"]
    assert first["tags"]["mlops.model_name"] == "tabular-classifier"    # the app gates and registers it
    assert first["inputs"]["target"] == "label" and first["inputs"]["model_name"] == "tabular-classifier"
    assert first["code"] == "." and first["environment"] == spec["environment"]
    later = module.job_spec(spec, "tabular-classifier", "label", champion="tabular-classifier:3",
                            data="azureml://datastores/mlopsdata/paths/loans/")
    assert "--champion-model ${{inputs.champion_model}}" in later["command"]
    assert later["inputs"]["champion_model"] == {"type": "mlflow_model", "path": "azureml:tabular-classifier:3"}
    assert later["inputs"]["data"]["path"] == "azureml://datastores/mlopsdata/paths/loans/"
    with pytest.raises(ValueError):
        module.job_spec(spec, "tabular-classifier", "label", champion="no-version")
