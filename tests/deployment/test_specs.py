"""The deployment specs load with azure-ai-ml's own loaders (which validate offline) and say what
the serving side needs: key auth, the scoring script, the inference environment, data collection."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deployment"


@pytest.fixture(scope="module")
def loaders():
    from azure.ai.ml import load_online_deployment, load_online_endpoint
    return load_online_endpoint, load_online_deployment


def test_endpoint_uses_key_auth(loaders):
    endpoint = loaders[0](DEPLOYMENT / "endpoint.yml")
    assert endpoint.auth_mode == "key"
    assert endpoint.name == "mlops-endpoint"


def test_deployment_spec(loaders):
    deployment = loaders[1](DEPLOYMENT / "deployment.yml")
    assert deployment.model == "mlops-model:1"          # the loader strips the azureml: prefix
    assert deployment.endpoint_name == "mlops-endpoint"
    assert deployment.code_configuration.scoring_script == "score.py"
    code = Path(deployment.base_path) / deployment.code_configuration.code   # relative to the YAML
    assert (code / "score.py").resolve() == DEPLOYMENT / "score.py"
    assert (code / "score_input.py").is_file()                        # deployed with it
    assert deployment.instance_type == "Standard_DS3_v2" and deployment.instance_count == 1
    assert deployment.request_settings.request_timeout_ms == 5000
    assert deployment.request_settings.max_concurrent_requests_per_instance == int(
        deployment.environment_variables["WORKER_COUNT"])
    assert deployment.liveness_probe.failure_threshold and deployment.readiness_probe.period

    collections = deployment.data_collector.collections
    assert set(collections) == {"model_inputs", "model_outputs"}
    assert all(str(c.enabled).lower() == "true" for c in collections.values())

    environment = deployment.environment
    assert environment.image.startswith("mcr.microsoft.com/azureml/")
    pip = next(d for d in environment.conda_file["dependencies"] if isinstance(d, dict))["pip"]
    needed = {"azureml-inference-server-http", "azureml-ai-monitoring", "mlflow-skinny", "scikit-learn",
              "pandas", "pyarrow"}
    assert needed <= {p.split(">")[0].split("=")[0].split("<")[0] for p in pip}


def test_conda_file_is_plain_yaml_with_python():
    conda = yaml.safe_load((DEPLOYMENT / "environment" / "conda.yml").read_text())
    assert any(str(d).startswith("python=3.11") for d in conda["dependencies"])
