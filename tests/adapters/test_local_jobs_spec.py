"""The local Jobs adapter (lifecycle/adapters/local_ml.py) hands the stand-in what a team's training needs: the
spec as a path in this app, the task and the training window."""
from __future__ import annotations

from lifecycle.adapters.local_ml import APP_ROOT, LocalAML, LocalJobs
from lifecycle.core.platform_values import TrainingRequest


class Recorded(LocalAML):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict | None]] = []

    def call(self, method, path, *, body=None, missing_ok=False):
        self.calls.append((method, path, body))
        return {"name": path.rsplit("/", 1)[-1], "status": "Queued", "experiment": body["experiment"]}


def _request(**changes) -> TrainingRequest:
    return TrainingRequest(**{"job_name": "train-m-1", "model_name": "m", "data": "http://h/a/data/drops/",
                              "target": "label", "trigger": "data", **changes})


def test_a_request_with_a_spec_sends_it_as_a_path_in_the_app_with_the_task_and_window():
    aml = Recorded()
    status = LocalJobs(aml).submit(_request(spec="examples/pipeline/pipeline.yml", task="regression",
                                            data_files=("2025/a.csv",), hyperparameters={"n_estimators": "9"}))
    assert status.status == "Queued"
    method, path, body = aml.calls[0]
    assert (method, path) == ("PUT", "/jobs/train-m-1")
    assert body["spec"] == str(APP_ROOT / "examples" / "pipeline" / "pipeline.yml")
    assert (body["task"], body["data_files"], body["hyperparameters"]) == ("regression", ["2025/a.csv"],
                                                                            {"n_estimators": "9"})
    assert body["holdout_files"] == []
    assert (body["window_column"], body["window_days"]) == ("", 0)          # no row window


def test_a_row_window_travels_in_the_body():
    aml = Recorded()
    LocalJobs(aml).submit(_request(window_column="day", window_days=30))
    body = aml.calls[0][2]
    assert (body["window_column"], body["window_days"]) == ("day", 30)


def test_a_request_without_a_spec_is_train_py_as_before():
    aml = Recorded()
    LocalJobs(aml).submit(_request())
    body = aml.calls[0][2]
    assert "spec" not in body and (body["task"], body["data_files"]) == ("classification", [])
