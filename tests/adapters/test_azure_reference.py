"""What training saved beside a registered model (reference/profile.json, reference/sample.csv, metrics.json),
read by the Azure ML registry adapter through azure-ai-ml's own `models.download`.

The management calls (the model version, its datastore and the datastore's key) go to the recorded service
(aml_service.py); the model's files are blobs on Azurite, in the container the recorded datastore names. azure-ai-ml
builds its own storage client for the datastore's account at *.blob.core.windows.net: the test points that
client at Azurite, and everything else runs as it would against Azure."""
from __future__ import annotations

import json

import pytest
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient

from emulator.azurite import ACCOUNT, ACCOUNT_KEY
from lifecycle.adapters.azure_ml import AzureMLAdapterError, AzureMLRegistry
from lifecycle.core.platform_values import ModelReference
from tests.adapters.aml_service import AzureMLService
from tests.adapters.recorded import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeCredential

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:marshmallow",
                                        "ignore::DeprecationWarning:azure.ai.ml",
                                        "ignore::DeprecationWarning:azure.storage.blob")

PROFILE = {"features": ["age", "income", "plan"], "target": "churned", "rows": 2000}
METRICS = {"challenger": {"f1": 0.83, "accuracy": 0.88}, "holdout_rows": 400}


@pytest.fixture
def aml(azurite, monkeypatch) -> AzureMLService:
    import azure.ai.ml._artifacts._blob_storage_helper as helper

    def on_azurite(account_url: str, credential=None, **kwargs):
        assert account_url == f"https://{ACCOUNT}.blob.core.windows.net", account_url
        return BlobServiceClient(f"{azurite.blob}/{ACCOUNT}", credential=credential, **kwargs)
    monkeypatch.setattr(helper, "BlobServiceClient", on_azurite)
    return AzureMLService(azurite.blob, ACCOUNT, ACCOUNT_KEY)


def _registry(aml: AzureMLService) -> AzureMLRegistry:
    return AzureMLRegistry(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, credential=FakeCredential(),
                           transport=RequestsTransport(session=aml.http.session))


def _model_files(aml: AzureMLService, azurite, job: str, files: dict[str, str]) -> None:
    """The job's model output, where the recorded model version's modelUri points."""
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        aml.outputs_container)
    for name, text in files.items():
        container.upload_blob(f"azureml/{job}/output/model/{name}", text.encode())


def test_reference_reads_the_profile_and_the_metrics_beside_the_model(aml, azurite):
    aml.model("churn", "3", "train-churn-ok")
    _model_files(aml, azurite, "train-churn-ok", {
        "MLmodel": "flavors: {}\n", "metrics.json": json.dumps(METRICS),
        "reference/profile.json": json.dumps(PROFILE), "reference/sample.csv": "age,income,plan\n42,51000.5,basic\n"})

    registry = _registry(aml)
    found = registry.reference("churn", "3")
    assert found == ModelReference(profile=PROFILE, metrics=METRICS)
    assert registry.reference("churn", "3") == found                   # a version never changes: read once
    assert len(aml.http.requests_to("GET", "/models/churn/versions/3$")) == 1
    # what azure-ai-ml asked the workspace for: the version, then the datastore and its key
    assert aml.http.requests_to("GET", "/models/churn/versions/3$")
    assert aml.http.requests_to("GET", "/datastores/workspaceblobstore$")
    assert aml.http.requests_to("POST", "/datastores/workspaceblobstore/listSecrets$")
    assert [str(c) for c in aml.http.writes() if not c.path.endswith("/listSecrets")] == []


def test_reference_and_sample_share_one_download(aml, azurite):
    aml.model("churn", "4", "train-churn-both")
    _model_files(aml, azurite, "train-churn-both", {
        "MLmodel": "flavors: {}\n", "reference/profile.json": json.dumps(PROFILE),
        "reference/sample.csv": "age,income,plan\n42,51000.5,basic\n,,plus\n"})
    registry = _registry(aml)
    assert registry.reference_sample("churn", "4", rows=5) == [{"age": 42, "income": 51000.5, "plan": "basic"},
                                                                {"age": None, "income": None, "plan": "plus"}]
    assert registry.reference("churn", "4") == ModelReference(profile=PROFILE, metrics={})   # no metrics.json


def test_a_model_without_a_profile_has_no_reference(aml, azurite):
    aml.model("churn", "5", "train-churn-bare")
    _model_files(aml, azurite, "train-churn-bare", {"MLmodel": "flavors: {}\n", "metrics.json": "{}"})
    registry = _registry(aml)
    assert registry.reference("churn", "5") is None
    assert registry.reference_sample("churn", "5", rows=5) == []


def test_an_unknown_model_has_no_reference(aml):
    registry = _registry(aml)
    assert registry.reference("churn", "99") is None
    assert registry.reference_sample("churn", "99", rows=5) == []


def test_an_unreadable_profile_says_which_model(aml, azurite):
    aml.model("churn", "6", "train-churn-broken")
    _model_files(aml, azurite, "train-churn-broken",
                 {"MLmodel": "flavors: {}\n", "reference/profile.json": "{not json"})
    with pytest.raises(AzureMLAdapterError, match="model churn:6 .* unreadable reference/profile.json"):
        _registry(aml).reference("churn", "6")
