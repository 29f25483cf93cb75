"""deployment/score.py in-process: init() finds and loads the MLflow model, run() answers Azure ML's
request bodies with one prediction per row, and refuses bad input with a 400 and the reason."""
from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from tests.deployment.sample_model import FEATURES, build_model

SCORE = Path(__file__).resolve().parents[2] / "deployment" / "score.py"
ROW = {"age": 42, "income": 51_000.5, "plan": "basic", "tenure_months": 3, "has_partner": False}


def load_score_module(name: str = "score_under_test"):
    """A fresh copy of score.py, loaded by path as the inference server loads it."""
    spec = importlib.util.spec_from_file_location(name, SCORE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_root(tmp_path_factory) -> Path:
    # Azure ML's layout: AZUREML_MODEL_DIR=.../azureml-models/<name>/<version>, the model folder inside
    root = tmp_path_factory.mktemp("models") / "azureml-models" / "churn" / "3"
    build_model(root / "model")
    return root


@pytest.fixture(scope="module")
def score(model_root):
    module = load_score_module()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AZUREML_MODEL_DIR", str(model_root))
        env.delenv("AZUREML_MODEL_NAME", raising=False)
        env.delenv("AZUREML_MODEL_VERSION", raising=False)
        module.init()
    return module


def call(score, body) -> tuple[int, dict]:
    out = score.run(body if isinstance(body, str) else json.dumps(body))
    if hasattr(out, "status_code"):  # an AMLResponse (a flask Response)
        text = out.get_data(as_text=True)
        assert "Traceback" not in text and 'File "' not in text
        return out.status_code, json.loads(text)
    json.dumps(out)  # what the server will do with it
    return 200, out


# -- answers ------------------------------------------------------------------------------------------

def test_split_body_answers_one_prediction_per_row_with_probabilities(score, model_root):
    sample = pd.read_csv(model_root / "model" / "reference" / "sample.csv").head(7)
    body = {"input_data": {"columns": list(sample.columns), "index": list(range(7)),
                           "data": sample.to_numpy().tolist()}}
    status, answer = call(score, body)
    assert status == 200
    import mlflow.sklearn
    expected = mlflow.sklearn.load_model(str(model_root / "model")).predict(sample).tolist()
    assert answer["predictions"] == expected
    assert answer["classes"] == ["churn", "stay"]
    assert len(answer["probabilities"]) == 7 and all(abs(sum(p) - 1) < 1e-9 for p in answer["probabilities"])
    assert answer["model"] == "churn:3"            # from .../azureml-models/churn/3
    assert "request_ids" not in answer


def test_records_body_echoes_request_ids(score):
    rows = [{**ROW, "request_id": "r-1"}, {**ROW, "tenure_months": 60, "plan": "premium", "request_id": "r-2"}]
    status, answer = call(score, {"data": rows})
    assert status == 200
    assert answer["request_ids"] == ["r-1", "r-2"]
    assert answer["predictions"] == ["churn", "stay"]


@pytest.mark.parametrize("body", [
    {"input_data": [ROW]},
    {"data": {"columns": FEATURES, "data": [[ROW[c] for c in FEATURES]]}},
    {"data": [[ROW[c] for c in FEATURES]]},                      # rows in the schema's column order
    {"data": {c: [ROW[c]] for c in FEATURES}},                   # columnar
    {"dataframe_records": [ROW]},
    {"input_data": {"columns": FEATURES[::-1], "data": [[ROW[c] for c in FEATURES[::-1]]]}},  # any order
])
def test_other_accepted_shapes(score, body):
    status, answer = call(score, body)
    assert status == 200, answer
    assert answer["predictions"] == ["churn"]


def test_convertible_values_and_missing_values_are_accepted(score):
    rows = [
        {**ROW, "age": "42", "income": "51000.5", "has_partner": "false"},   # numbers and booleans as text
        {**ROW, "age": 42.0, "has_partner": 0},
        {**ROW, "income": None, "plan": None},                              # missing: the model imputes
        {"age": 30, "income": 40_000, "tenure_months": 5, "has_partner": True},  # key left out: missing
        {**ROW, "plan": "unheard-of"},                                      # unknown category
    ]
    status, answer = call(score, {"data": rows})
    assert status == 200, answer
    assert len(answer["predictions"]) == 5


# -- bad input -----------------------------------------------------------------------------------------

TOO_MANY = {"data": [ROW] * 10_001}


@pytest.mark.parametrize("body, reason", [
    ("", "body is empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ({"rows": [ROW]}, "expected a key 'input_data' or 'data'"),
    ({"data": []}, "no rows"),
    ({"input_data": {"columns": FEATURES, "data": []}}, "no rows"),
    (TOO_MANY, "10001 rows is more than the limit of 10000"),
    ({"data": [{k: v for k, v in ROW.items() if k != "plan"}]}, "missing column(s) 'plan'"),
    ({"data": [{**ROW, "colour": "red"}]}, "unexpected column(s) 'colour'"),
    ({"data": [ROW, {**ROW, "income": "lots"}]}, "row 1, column 'income': \"lots\" is not a number"),
    ({"data": [{**ROW, "age": 41.5}]}, "row 0, column 'age': 41.5 is not an integer"),
    ({"data": [{**ROW, "has_partner": "maybe"}]}, "column 'has_partner': \"maybe\" is not true or false"),
    ({"data": [{**ROW, "plan": ["basic"]}]}, "column 'plan': [\"basic\"] is not a string"),
    ({"data": [{**ROW, "income": {"value": 1}}]}, "column 'income'"),
    ('{"data": [{"age": 1, "income": Infinity, "plan": "basic", "tenure_months": 1, "has_partner": true}]}',
     "is not a finite number"),
    ({"input_data": {"columns": FEATURES, "data": [[1, 2, "basic"]]}}, "row 0 has 3 values, expected 5"),
    ({"input_data": {"columns": "age", "data": [[1]]}}, "must be a list of column names"),
    ({"input_data": {"columns": FEATURES}}, "'input_data.data' must be a list of rows"),
    ({"data": [ROW, 3]}, "must be a list of objects"),
    ({"data": {"age": [1, 2], "income": [1]}}, "different lengths"),
])
def test_bad_input_is_refused_with_the_reason(score, body, reason):
    status, answer = call(score, body)
    assert status == 400
    assert reason in answer["error"]


def test_a_failing_model_answers_500_with_one_line(score, monkeypatch):
    def broken(features):
        raise RuntimeError("weights went missing\nsecond line")
    monkeypatch.setattr(score._scorer.estimator, "predict", broken)
    status, answer = call(score, {"data": [ROW]})
    assert status == 500
    assert answer["error"] == "the model failed to score the request: RuntimeError: weights went missing"


# -- finding the model and data collection --------------------------------------------------------------

def test_model_is_found_at_any_depth_and_named_by_env(model_root, monkeypatch):
    module = load_score_module("score_env_named")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root.parent.parent))  # .../azureml-models
    monkeypatch.setenv("AZUREML_MODEL_NAME", "churn-model")
    monkeypatch.setenv("AZUREML_MODEL_VERSION", "7")
    module.init()
    assert module._scorer.path == model_root / "model"
    assert call(module, {"data": [ROW]})[1]["model"] == "churn-model:7"


def test_init_without_a_model_says_so(tmp_path, monkeypatch):
    module = load_score_module("score_no_model")
    (tmp_path / "model").mkdir()
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="no MLflow model under .*no MLmodel file found"):
        module.init()
    monkeypatch.delenv("AZUREML_MODEL_DIR")
    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR is not set"):
        module.init()


def test_azure_data_collection_collects_inputs_and_outputs(model_root, monkeypatch):
    """In Azure, azureml-ai-monitoring's Collector feeds the deployment's data_collector."""
    collected: dict[str, list] = {}

    class Collector:
        def __init__(self, name, on_error=None):
            assert on_error is not None           # outside Azure it raises without one
            self.name = name

        def collect(self, data, correlation_context=None):
            collected.setdefault(self.name, []).append((data.copy(), correlation_context))
            return f"context-{len(collected[self.name])}"

    monitoring = types.ModuleType("azureml.ai.monitoring")
    monitoring.Collector = Collector
    for name, module in {"azureml": types.ModuleType("azureml"), "azureml.ai": types.ModuleType("azureml.ai"),
                         "azureml.ai.monitoring": monitoring}.items():
        monkeypatch.setitem(sys.modules, name, module)
    score = load_score_module("score_collecting")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root))
    score.init()
    status, answer = call(score, {"data": [{**ROW, "request_id": "q-9"}]})
    assert status == 200
    (inputs, _), = collected["model_inputs"]
    (outputs, context), = collected["model_outputs"]
    assert list(inputs.columns) == FEATURES + ["request_id"] and inputs["request_id"].tolist() == ["q-9"]
    assert outputs["prediction"].tolist() == answer["predictions"]
    assert outputs["request_id"].tolist() == ["q-9"] and context == "context-1"
