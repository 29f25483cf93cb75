"""deployment/score.py serving a regression model: numbers, without probabilities or classes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.deployment.test_score import call, load_score_module


@pytest.fixture(scope="module")
def score(tmp_path_factory):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    root = tmp_path_factory.mktemp("models") / "azureml-models" / "diabetes" / "2"
    mlflow.sklearn.save_model(model, str(root / "model"), signature=infer_signature(x, model.predict(x)),
                              serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
    module = load_score_module("score_regression")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AZUREML_MODEL_DIR", str(root))
        env.delenv("AZUREML_MODEL_NAME", raising=False)
        env.delenv("AZUREML_MODEL_VERSION", raising=False)
        module.init()
    return module, x, model


def test_a_regression_model_answers_numbers_only(score):
    module, x, model = score
    rows = x.head(4)
    status, answer = call(module, {"input_data": {"columns": list(rows.columns), "data": rows.values.tolist()}})
    assert status == 200
    assert set(answer) == {"predictions", "model"} and answer["model"] == "diabetes:2"
    assert all(isinstance(p, float) for p in answer["predictions"])
    assert np.allclose(answer["predictions"], model.predict(rows))


def test_request_ids_are_echoed_beside_the_numbers(score):
    module, x, _ = score
    records = [{**row, "request_id": f"r{i}"} for i, row in enumerate(x.head(2).to_dict(orient="records"))]
    status, answer = call(module, json.dumps({"data": records}))
    assert status == 200 and answer["request_ids"] == ["r0", "r1"] and len(answer["predictions"]) == 2
    assert "probabilities" not in answer and "classes" not in answer
