"""Three models in one app on the local stack, from one models file: a binary classifier trained by our
train.py on files appended to one folder, a regression trained on daily partitions, and a multiclass model
trained by a team's own two-step pipeline. Each goes its own way through the whole chain (drop → job → gate
→ rollout → drift alert → retrain → promotion), and none of its events starts anything for the others."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import requests

from lifecycle.core.rollout_machine import Phase, Rollout
from lifecycle.core.state_records import AlertRecord, Decision, Drop, TrainingRun
from lifecycle.model_scope import for_model
from mlops.demo_data import HOUSE_COLUMNS, house_csv, house_rows
from mlops.status import collect
from mlops.traffic import FeedbackWriter, Traffic
from tests.conftest import start_local_stack, wait_until

pytestmark = [pytest.mark.stack, pytest.mark.chains, pytest.mark.timeout(600)]

MODELS = """
defaults:
  retrain: {cooldown_minutes: 0, drop_quiet_seconds: 3}
  rollout: {steps: [50, 100], bake_seconds: 3, min_requests: 20, retention_seconds: 0}
  monitor: {window_minutes: 0.75, min_rows: 150, min_labels: 80, alert_cooldown_minutes: 0}
models:
  cancer:
    target: target
    endpoint: cancer-endpoint
    data: {root: cancer/}
  houses:
    task: regression
    target: price
    endpoint: houses-endpoint
    data: {root: houses/, window: 30 days}
  wine:
    target: cultivar
    endpoint: wine-endpoint
    data: {root: wine/}
    training: {spec: examples/pipeline/pipeline.yml, inputs: {n_estimators: 40}}
"""
SETTINGS = {"RECONCILE_SCHEDULE": "*/1 * * * * *", "SENSITIVE_COLUMN": ""}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    models = tmp_path_factory.mktemp("models") / "mlops.yaml"
    models.write_text(MODELS)
    stack, info, p, data = start_local_stack(tmp_path_factory, "own-models", {**SETTINGS, "MLOPS_CONFIG": str(models)})
    yield stack, info, p, data
    stack.stop()


# -- data ------------------------------------------------------------------------------------------------
def csv_of(frame) -> bytes:
    return frame.to_csv(index=False).encode()


def cancer_files():
    from sklearn.datasets import load_breast_cancer
    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return frame.iloc[:300], frame.iloc[300:]


def wine_rows(n: int, seed: int, drift: bool = False):
    """Wine rows drawn from scikit-learn's table with a little noise; `drift`: stronger wines, more proline."""
    from sklearn.datasets import load_wine
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    picked = frame.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    rng = random.Random(seed)
    for column in frame.columns[:-1]:
        spread = frame[column].std() * 0.05
        picked[column] = [v + rng.gauss(0, spread) for v in picked[column]]
    if drift:
        picked["alcohol"] += 1.5
        picked["proline"] *= 1.8
    return picked


def put(data, path: str, body: bytes) -> None:
    data.upload_blob(path, body, overwrite=True)


def drop(data, folder: str, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        put(data, folder + name, body)
    put(data, folder + "_SUCCESS", b"")


# -- the chain, as the lifecycle's records tell it -----------------------------------------------------------
def runs(p, model: str) -> list[TrainingRun]:
    return sorted((r for r in p.state.list(TrainingRun) if r.model_name == model), key=lambda r: r.submitted_at)


def next_run(p, model: str, seen: int) -> TrainingRun:
    return wait_until(lambda: (found := runs(p, model)) and len(found) > seen and found[seen], timeout=60,
                      what=f"training run {seen + 1} of {model}")


def registered(p, run: TrainingRun) -> Decision:
    decision = wait_until(lambda: p.state.get(Decision, run.job_name), timeout=240,
                          what=f"the gate's decision on {run.job_name} ({p.jobs.get(run.job_name)})")
    assert decision.outcome == "registered", decision.reasons
    return decision


def live(p, model: str, version: str, timeout: float = 240) -> Rollout:
    scoped = for_model(p, model)
    ref = f"{model}:{version}"

    def probe():
        r = scoped.state.get(Rollout, scoped.policies.model.endpoint)
        if r is not None and r.model == ref and r.phase == Phase.ROLLED_BACK:
            pytest.fail(f"{ref} was rolled back: {r.reason}")
        return r is not None and r.live_model == ref and r.phase == Phase.PROMOTED and r
    return wait_until(probe, timeout=timeout, interval=0.5, what=f"{ref} to take all traffic")


def traffic_for(info, p, model: str, columns: list[str], rows: list[list], labels: list | None = None) -> Traffic:
    endpoint = for_model(p, model).policies.model.endpoint
    uri = info.scoring_uri.replace(f"/endpoints/{info.endpoint_name}/", f"/endpoints/{endpoint}/")
    return Traffic(uri, p.endpoints.scoring_key(endpoint), columns, rows, rate=15, rows_per_request=4,
                   labels=labels)


def feedback(info, p):
    from azure.storage.blob import BlobServiceClient
    return BlobServiceClient.from_connection_string(info.storage_connection_string) \
        .get_container_client(p.policies.model.feedback_container)


def drift_retrain_promote(info, p, model: str, columns, rows, labels) -> tuple[AlertRecord, Decision]:
    """Drifted traffic with its ground truth: a monitoring pass (the monitor route, as its timer would) raises
    the alert, the alert retrains on the labelled production rows, and the new version earns its traffic."""
    target = for_model(p, model).policies.model.target_column
    traffic = traffic_for(info, p, model, columns, rows, labels)
    with traffic, FeedbackWriter(feedback(info, p), traffic, target, every=2):
        time.sleep(12)                                      # rows and their labels in the window
        answer = requests.post(f"{info.functions_url}/api/monitor", params={"code": info.functions_key,
                                                                            "model": model}, timeout=60)
        assert answer.status_code in (200, 202), answer.text
        assert [passed["model"].split(":")[0] for passed in answer.json()["passes"]] == [model]
        alert = wait_until(lambda: next((a for a in p.state.list(AlertRecord)
                                         if a.model == model and a.outcome == "retraining"), None),
                           timeout=180, interval=0.5, what=f"a drift alert to retrain {model}")
        decision = registered(p, p.state.get(TrainingRun, alert.job))
        live(p, model, decision.version)
    return alert, decision


# -- the tests, in order: each builds on the last ------------------------------------------------------------
def test_a_file_appended_to_a_trained_folder_trains_again_on_the_whole_folder(app):
    stack, info, p, data = app
    first_rows, later_rows = cancer_files()
    drop(data, "cancer/", {"a.csv": csv_of(first_rows)})
    first = next_run(p, "cancer", 0)
    assert first.data_files == ("a.csv",)
    live(p, "cancer", registered(p, first).version)
    put(data, "cancer/b.csv", csv_of(later_rows))              # appended, no marker: complete after 3 quiet s
    second = next_run(p, "cancer", 1)
    assert second.data_files == ("a.csv", "b.csv") and second.holdout_files == ("b.csv",)
    decision = registered(p, second)
    inputs = stack.home.path("aml", "jobs", second.job_name, "inputs", "data")
    assert sorted(f.name for f in Path(inputs).iterdir()) == ["a.csv", "b.csv"]      # the job read both
    assert p.jobs.metrics(second.job_name)["holdout"]["from"] == "new files"        # rows the champion never saw
    assert decision.metrics["f1"] > 0.9 and set(decision.metrics) >= {"accuracy", "f1", "roc_auc"}


def test_daily_partitions_accumulate_and_a_regression_goes_through_the_whole_chain(app):
    stack, info, p, data = app
    drop(data, "houses/2026-11-29/", {"part-0000.csv": house_csv(600, seed=1)})
    first = next_run(p, "houses", 0)
    live(p, "houses", registered(p, first).version)
    calm = [r[:-1] for r in house_rows(400, seed=5)]
    with traffic_for(info, p, "houses", HOUSE_COLUMNS[:-1], calm):
        drop(data, "houses/2026-11-30/", {"part-0000.csv": house_csv(600, seed=2)})
        second = next_run(p, "houses", 1)
        assert second.data_files == ("2026-11-29/part-0000.csv", "2026-11-30/part-0000.csv")
        decision = registered(p, second)
        inputs = Path(stack.home.path("aml", "jobs", second.job_name, "inputs", "data"))
        assert sorted(str(f.relative_to(inputs)) for f in inputs.rglob("*.csv")) == list(second.data_files)
        assert set(decision.metrics) >= {"mae", "rmse", "r2"} and decision.metrics["r2"] > 0.8
        live(p, "houses", decision.version)
    bigger = house_rows(1500, seed=9, area_shift=70)
    alert, retrained = drift_retrain_promote(info, p, "houses", HOUSE_COLUMNS[:-1], [r[:-1] for r in bigger],
                                             [r[-1] for r in bigger])
    # bigger houses: their inputs, their prices (label drift) or the errors may be what fires first
    assert alert.signal in ("data_drift", "prediction_drift", "multivariate_drift", "label_drift",
                            "attribution_drift", "performance", "concept_drift"), alert
    champion = retrained.champion_metrics or {}
    assert retrained.metrics["mae"] < champion["mae"]       # on the bigger homes, the retrained one is better
    shown = collect(p, "houses")
    assert shown["task"] == "regression"
    assert any(set(m.get("performance") or {}) & {"mae", "rmse"} for m in shown["monitoring"]), shown["monitoring"]


def test_a_teams_pipeline_trains_a_multiclass_model_through_the_whole_chain(app):
    stack, info, p, data = app
    drop(data, "wine/batch-1/", {"wine.csv": csv_of(wine_rows(400, seed=1))})
    first = next_run(p, "wine", 0)
    decision = registered(p, first)
    job = json.loads(Path(stack.home.path("aml", "jobs", first.job_name, "job.json")).read_text())
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("split", "Completed"), ("train/prep", "Completed"), ("train/train", "Completed"), ("evaluate", "Completed")]
    assert decision.metrics["f1"] > 0.8
    live(p, "wine", decision.version)
    drifted = wine_rows(1200, seed=7, drift=True)
    columns = [c for c in drifted.columns if c != "cultivar"]
    alert, retrained = drift_retrain_promote(info, p, "wine", columns, drifted[columns].values.tolist(),
                                             drifted["cultivar"].tolist())
    assert p.state.get(TrainingRun, alert.job).trigger == "drift"


def test_each_models_events_started_only_its_own_steps(app):
    stack, info, p, data = app
    before = {m: len(runs(p, m)) for m in ("cancer", "houses", "wine")}
    drop(data, "cancer/broken/", {"x.csv": b"mean radius,mean texture\n1,2\n3,4\n"})   # no target column
    failed = next_run(p, "cancer", before["cancer"])
    wait_until(lambda: (r := p.state.get(TrainingRun, failed.job_name)) and r.status == "Failed", timeout=120,
               what="the broken drop's job to fail")
    drop(data, "elsewhere/", {"y.csv": b"a,b\n1,2\n"})                                  # under no model's root
    time.sleep(5)
    after = {m: len(runs(p, m)) for m in ("cancer", "houses", "wine")}
    assert after == {**before, "cancer": before["cancer"] + 1}
    assert not any(d.prefix.startswith("elsewhere/") for d in p.state.list(Drop))
    # every alert retrained its own model only, and each rollout stayed on its own endpoint
    for alert in (a for a in p.state.list(AlertRecord) if a.job):
        assert p.state.get(TrainingRun, alert.job).model_name == alert.model
    for model in ("cancer", "houses", "wine"):
        r = p.state.get(Rollout, f"{model}-endpoint")
        assert r is not None and r.live_model.startswith(f"{model}:")
    broken = p.state.get(Drop, next(d.drop_id for d in p.state.list(Drop) if d.prefix == "cancer/broken/"))
    assert broken.failed                                  # kept out of cancer's later training windows
    status = collect(p)
    assert [m["model_name"] for m in status["app_models"]] == ["cancer", "houses", "wine"]


def test_a_broken_models_file_stops_the_app_as_it_starts(tmp_path_factory):
    from emulator.stack import StackError
    models = tmp_path_factory.mktemp("broken") / "mlops.yaml"
    models.write_text("models: {a: {target: y, rollout: {steps: [50, 10, 100]}}}\n")
    with pytest.raises(StackError) as error:
        stack, *_ = start_local_stack(tmp_path_factory, "broken-models", {"MLOPS_CONFIG": str(models)})
        stack.stop()
    assert "importing the function app module 'function_app' failed: ModelsFileError" in str(error.value)
    assert f"{models}: models.a.rollout.steps: is [50, 10, 100]: it must be increasing percentages" in str(error.value)
