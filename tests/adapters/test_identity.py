"""Identity instead of keys: the storage adapters and the Event Grid publisher with the Function App's
identity-based settings, a token from its managed identity endpoint, over HTTPS, with no connection string
and no topic key.

Azurite runs with `--oauth basic` over HTTPS (a certificate the test makes); the token comes through
azure-identity's DefaultAzureCredential from a stand-in of the managed identity endpoint that Functions
gives an app, so the path is the one the app takes in Azure, down to the scope it asks for."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import BlobServiceClient

from emulator.azurite import ACCOUNT, Azurite
from lifecycle.adapters import storage
from lifecycle.adapters.blob_data import BlobData
from lifecycle.adapters.blob_state import BlobState
from lifecycle.adapters.eventgrid_events import GridEvents
from lifecycle.adapters.feedback import BlobFeedback
from lifecycle.core.state_records import Rejection
from lifecycle.settings import Settings, SettingsError
from tests.adapters.identity import ISSUER, HttpsRecorder, ManagedIdentityEndpoint, claims, make_certificate

CLIENT_ID = "0b5c8a3e-6f1d-4c2a-9e7b-3d4f5a6b7c8d"     # the user-assigned identity's client id
# Set where a developer or CI machine may hold other credentials: the test must take the managed identity.
_OTHER_CREDENTIALS = ("AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                      "AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
                      "IDENTITY_SERVER_THUMBPRINT", "AZURE_CLIENT_ID")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory, certificate):
    with Azurite(tmp_path_factory.mktemp("azurite-oauth"), tls=certificate, oauth=True) as endpoints:
        yield endpoints


@pytest.fixture
def managed_identity(monkeypatch, certificate):
    """The environment Functions gives an app with a managed identity, trusting the test's certificate."""
    for name in _OTHER_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    storage._credential.cache_clear()
    with ManagedIdentityEndpoint() as endpoint:
        monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
        monkeypatch.setenv("IDENTITY_HEADER", endpoint.header)
        # azure-core's requests transport honours it, for storage and Event Grid alike (the Event Grid client
        # drops transport options given to its constructor for basic topics).
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
        yield endpoint
    storage._credential.cache_clear()


def identity_settings(blob_uri: str, **more: str) -> Settings:
    """App settings as the infrastructure sets them in Azure: identity-based storage, no key anywhere."""
    return Settings.from_env({
        "AzureWebJobsStorage__blobServiceUri": blob_uri,
        "AzureWebJobsStorage__queueServiceUri": blob_uri.replace("blob", "queue"),
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "TARGET_COLUMN": "default",
        **more,
    })


def rejection(event_id: str, reason: str = "bad input") -> Rejection:
    return Rejection(event_id, "Microsoft.Storage.BlobCreated", "/blobServices/default/containers/data/blobs/x",
                     "on_data_arrived", reason, {"id": event_id}, "2026-03-01T00:00:00+00:00")


def test_storage_settings_take_a_connection_string_or_the_identity_based_names():
    local = Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert (local.storage_connection, local.blob_service_uri) == ("UseDevelopmentStorage=true", "")
    by_uri = identity_settings("https://stmlops.blob.core.windows.net/")
    assert by_uri.storage_connection == ""
    assert by_uri.blob_service_uri == "https://stmlops.blob.core.windows.net"
    assert by_uri.managed_identity_client_id == CLIENT_ID
    by_name = Settings.from_env({"AzureWebJobsStorage__accountName": "stmlops", "AZURE_CLIENT_ID": "abc"})
    assert by_name.blob_service_uri == "https://stmlops.blob.core.windows.net"
    assert by_name.managed_identity_client_id == "abc"


def test_no_storage_setting_names_both_ways_to_give_one():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"MODEL_NAME": "loans"})
    assert "AzureWebJobsStorage" in str(error.value)
    assert "AzureWebJobsStorage__blobServiceUri" in str(error.value)
    assert "AzureWebJobsStorage__accountName" in str(error.value)


def test_a_topic_without_key_needs_https():
    with pytest.raises(SettingsError, match="needs https"):
        identity_settings("https://stmlops.blob.core.windows.net", EVENTGRID_TOPIC_ENDPOINT="http://127.0.0.1:1/api/events")
    keyed = identity_settings("https://stmlops.blob.core.windows.net", EVENTGRID_TOPIC_KEY="k",
                              EVENTGRID_TOPIC_ENDPOINT="http://127.0.0.1:1/api/events")
    assert keyed.eventgrid_key == "k"


def test_a_connection_string_needs_no_credential():
    service = storage.app_blob_service(Settings.from_env({"AzureWebJobsStorage": (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/{ACCOUNT};")}))
    assert service.url.startswith("http://127.0.0.1:1/")
    assert service.credential.account_name == ACCOUNT      # the shared key, not a token


def test_one_credential_per_identity(managed_identity):
    settings = identity_settings("https://stmlops.blob.core.windows.net")
    assert storage.credential(settings) is storage.credential(settings)
    assert storage.credential(settings) is not storage.credential(Settings.from_env({"AzureWebJobsStorage": "x"}))


def test_state_data_and_feedback_run_on_a_token_over_https(oauth_azurite, managed_identity):
    assert oauth_azurite.blob.startswith("https://")
    settings = identity_settings(f"{oauth_azurite.blob}/{ACCOUNT}")
    service = storage.app_blob_service(settings)
    assert service.credential is storage.credential(settings)      # a token credential, no key

    state = BlobState(service, "state-identity")
    assert state.create(rejection("e1"))
    assert not state.create(rejection("e1", "replayed"))              # if-none-match holds with a token too
    state.update(Rejection, "on_data_arrived/e1", lambda r: r and Rejection(**{**r.to_json(), "reason": "seen"}))
    assert state.get(Rejection, "on_data_arrived/e1").reason == "seen"
    assert [r.event_id for r in state.list(Rejection)] == ["e1"]

    data = BlobData(service, "data-identity")
    before = datetime.now(UTC) - timedelta(minutes=1)
    url = data.write_drop("loans/2026-03-01/", {"part-0.csv": b"age,default\n30,0\n"})
    assert url == f"{oauth_azurite.blob}/{ACCOUNT}/data-identity/loans/2026-03-01/"
    changed = {blob.path: blob for blob in data.changed_since(before)}
    assert set(changed) == {"loans/2026-03-01/part-0.csv", "loans/2026-03-01/_SUCCESS"}
    assert changed["loans/2026-03-01/part-0.csv"].content_type == "text/csv"

    service.create_container("feedback-identity")
    service.get_container_client("feedback-identity").upload_blob(
        "labels.csv", b"request_id,default\nr1,1\nr2,0\n")
    feedback = BlobFeedback(service, "feedback-identity")
    assert feedback.labels(before, label_column=settings.target_column) == {"r1": "1", "r2": "0"}

    # Every token was the user-assigned identity's, for storage.
    assert {(r.resource, r.client_id) for r in managed_identity.requests} == {("https://storage.azure.com", CLIENT_ID)}


class _TokenFor:
    """A token credential for a fixed audience, to show that Azurite checks what the real token carries."""
    def __init__(self, audience: str, issuer: str = ISSUER) -> None:
        self.audience, self.issuer = audience, issuer

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        now = int(time.time())
        token = jwt.encode({"aud": self.audience, "iss": self.issuer, "iat": now, "nbf": now - 60, "exp": now + 600},
                           "k" * 32, algorithm="HS256")
        return AccessToken(token, now + 600)


@pytest.mark.parametrize("credential", [_TokenFor("https://eventgrid.azure.net"),
                                        _TokenFor("https://storage.azure.com", issuer="https://evil.example/")],
                         ids=["wrong-audience", "wrong-issuer"])
def test_azurite_refuses_a_token_not_meant_for_storage(oauth_azurite, certificate, credential):
    service = BlobServiceClient(f"{oauth_azurite.blob}/{ACCOUNT}", credential=credential,
                                connection_verify=str(certificate[0]))
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as error:
        BlobState(service, "state-refused").create(rejection("e2"))
    assert error.value.status_code in (401, 403)


def test_events_without_a_key_are_published_with_a_bearer_token_for_event_grid(certificate, managed_identity):
    settings = identity_settings("https://stmlops.blob.core.windows.net")
    with HttpsRecorder(certificate) as topic:
        events = GridEvents(f"{topic.url}/api/events", settings.eventgrid_key, credential=storage.credential(settings))
        events.publish("MLOps.ModelPromoted", "models/loans:3", {"model": "loans:3"})
    [request] = topic.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert "aeg-sas-key" not in headers
    token = claims(headers["authorization"])
    assert token["aud"] == "https://eventgrid.azure.net"          # scope https://eventgrid.azure.net/.default
    assert token["appid"] == CLIENT_ID
    [event] = json.loads(request.body)
    assert (event["eventType"], event["subject"], event["data"]) == ("MLOps.ModelPromoted", "models/loans:3",
                                                                     {"model": "loans:3"})
    assert [(r.resource, r.client_id) for r in managed_identity.requests] == [
        ("https://eventgrid.azure.net", CLIENT_ID)]


def test_the_publisher_needs_a_key_or_a_credential():
    with pytest.raises(ValueError, match="EVENTGRID_TOPIC_KEY or a token credential"):
        GridEvents("https://topic.westeurope-1.eventgrid.azure.net/api/events", "")


def test_the_composition_root_puts_every_adapter_on_the_identity(oauth_azurite, managed_identity, certificate):
    """bootstrap.build_platform from the identity-based settings alone: the state, data and feedback it picks
    work on the token, and events go out with one."""
    from lifecycle.bootstrap import build_platform
    with HttpsRecorder(certificate) as topic:
        platform = build_platform(identity_settings(
            f"{oauth_azurite.blob}/{ACCOUNT}", EVENTGRID_TOPIC_ENDPOINT=f"{topic.url}/api/events",
            STATE_CONTAINER="state-root", DATA_CONTAINER="data-root", FEEDBACK_CONTAINER="feedback-root",
            AML_LOCAL_URL="http://127.0.0.1:1"))
        assert platform.state.create(rejection("e3"))
        assert [r.event_id for r in platform.state.list(Rejection)] == ["e3"]
        platform.data.write_drop("loans/d1/", {"part-0.csv": b"age,default\n30,0\n"})
        assert platform.feedback.labels(datetime.now(UTC) - timedelta(minutes=1)) == {}
        platform.events.publish("MLOps.RolloutStarted", "endpoints/e", {"model": "loans:1"})
    assert claims(topic.requests[0].headers["Authorization"])["aud"] == "https://eventgrid.azure.net"
    assert {r.resource for r in managed_identity.requests} == {"https://storage.azure.com", "https://eventgrid.azure.net"}
    assert {r.client_id for r in managed_identity.requests} == {CLIENT_ID}


def test_the_azure_ml_adapters_share_the_app_credential(managed_identity):
    from lifecycle.bootstrap import build_platform
    settings = identity_settings("https://stmlops.blob.core.windows.net", MLOPS_PLATFORM="azure",
                                 AZURE_SUBSCRIPTION_ID="00000000-1111-2222-3333-444444444444",
                                 AZURE_RESOURCE_GROUP="rg-mlops", AZUREML_WORKSPACE="mlw-mlops",
                                 EVENTGRID_TOPIC_ENDPOINT="https://topic.westeurope-1.eventgrid.azure.net/api/events")
    platform = build_platform(settings)
    shared = storage.credential(settings)
    assert platform.jobs.credential is shared
    assert platform.registry.credential is shared
    assert platform.endpoints.credential is shared
    assert platform.metrics.credential is shared
    assert managed_identity.requests == []          # nothing asked for a token before a call needs one


def test_the_local_path_never_loads_azure_identity():
    """Cold start: with a connection string and a topic key nothing needs a token, so azure-identity stays unloaded."""
    import subprocess
    import sys
    code = (
        "import sys\n"
        "from lifecycle.bootstrap import build_platform\n"
        "from lifecycle.settings import Settings\n"
        "build_platform(Settings.from_env({'AzureWebJobsStorage': 'DefaultEndpointsProtocol=http;AccountName=a;"
        "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;', 'EVENTGRID_TOPIC_ENDPOINT': 'http://127.0.0.1:2/api/events',"
        " 'EVENTGRID_TOPIC_KEY': 'k', 'AML_LOCAL_URL': 'http://127.0.0.1:3'}))\n"
        "print('azure.identity' in sys.modules)\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"
