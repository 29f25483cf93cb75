"""The stand-in's utilisation and reference routes: a real model served by azureml-inference-server-http under
gunicorn, measured with psutil while it scores, read through the lifecycle's local adapters."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psutil
import pytest
import requests

from emulator.aml.endpoints import usage_over
from emulator.aml.service import LocalAzureML
from emulator.aml.serving import UsageSample
from emulator.loop import BackgroundLoop
from lifecycle.adapters.local_ml import LocalAML, LocalAMLError, LocalEndpoints, LocalMetrics, LocalRegistry
from lifecycle.core.platform_values import Utilisation
from tests.conftest import wait_until
from tests.deployment.sample_model import FEATURES, build_model, features

KEY = "aml-key-for-tests"
ENDPOINT = "util-endpoint"
WORKSPACE_ID = "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w"


class QuietGrid:
    """What the stand-in needs from the local Event Grid: the workspace topic's id, and somewhere to publish."""
    topic_ids = {"workspace": WORKSPACE_ID}

    async def publish(self, topic, events) -> None:
        pass


@pytest.fixture(scope="module")
def standin(azurite, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("utilisation")
    loop = BackgroundLoop("test-aml-utilisation")
    aml = LocalAzureML(tmp / "aml", azurite.connection_string, QuietGrid(), "workspace", KEY,
                       collector_container=f"collected-{uuid.uuid4().hex[:8]}")
    loop.run(aml.start())
    client = LocalAML(aml.url, KEY)
    model_name = f"util-{uuid.uuid4().hex[:8]}"          # the registry's container is shared by the session
    try:
        client.call("POST", f"/models/{model_name}/versions", body={"path": str(build_model(tmp / "model"))})
        client.call("PUT", f"/endpoints/{ENDPOINT}")
        client.call("PUT", f"/endpoints/{ENDPOINT}/deployments/blue", body={"model": f"{model_name}:1"})
        endpoints = LocalEndpoints(client)
        wait_until(lambda: endpoints.get(ENDPOINT).deployment("blue").state in ("Succeeded", "Failed"),
                   timeout=120, interval=0.2, what="the deployment to start")
        assert endpoints.get(ENDPOINT).deployment("blue").state == "Succeeded", endpoints.get(ENDPOINT)
        endpoints.set_traffic(ENDPOINT, {"blue": 100})
        # CPU is measured between samples, from the last one before a window opens: let the sampler take one
        start = datetime(2000, 1, 1, tzinfo=UTC)
        wait_until(lambda: LocalMetrics(client).utilisation(ENDPOINT, "blue", start).detail.get("samples", 0) >= 3,
                   timeout=30, interval=0.2, what="the sampler to sample the deployment")
        yield client, model_name
    finally:
        loop.run(aml.close())
        loop.close()


def test_utilisation_of_a_deployment_that_scores(standin):
    client, _ = standin
    endpoints = LocalEndpoints(client)
    state, key = endpoints.get(ENDPOINT), endpoints.scoring_key(ENDPOINT)
    since = datetime.now(UTC)
    rows = features(50, seed=3).to_dict(orient="records")
    with requests.Session() as session:
        for _ in range(40):
            answer = session.post(state.scoring_uri, json={"data": rows}, timeout=30,
                                  headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": "blue"})
            assert answer.status_code == 200, answer.text

    found = LocalMetrics(client).utilisation(ENDPOINT, "blue", since)
    assert isinstance(found, Utilisation) and found.deployment == "blue" and found.instances == 1
    assert 0 < found.cpu_percent <= 100
    assert 0 < found.memory_percent < 100
    assert found.detail["rss_mb"] > 10 and found.detail["processes"] == 3          # gunicorn arbiter + 2 workers
    assert found.detail["cpu_count"] == psutil.cpu_count() and found.detail["cpu_seconds"] > 0

    raw = client.call("GET", f"/endpoints/{ENDPOINT}/deployments/blue/utilisation?since={since.timestamp()}")
    assert set(raw) == {"deployment", "cpu_percent", "memory_percent", "instances", "detail"}
    assert {"rss_mb", "processes", "cpu_count"} <= set(raw["detail"])


def test_a_window_before_any_sample_has_no_figures(standin):
    client, _ = standin
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    found = LocalMetrics(client).utilisation(ENDPOINT, "blue", long_ago, long_ago + timedelta(minutes=5))
    assert (found.cpu_percent, found.memory_percent, found.instances) == (None, None, 1)


def test_an_unknown_deployment_has_no_utilisation(standin):
    client, _ = standin
    assert LocalMetrics(client).utilisation(ENDPOINT, "nobody", datetime.now(UTC)) == \
        Utilisation("nobody", None, None)
    assert LocalMetrics(client).utilisation("no-endpoint", "blue", datetime.now(UTC)) == \
        Utilisation("blue", None, None)
    with pytest.raises(LocalAMLError, match="400 since must be epoch seconds"):
        client.call("GET", f"/endpoints/{ENDPOINT}/deployments/blue/utilisation?since=yesterday")


def test_reference_returns_the_profile_and_metrics_saved_with_the_model(standin):
    client, model_name = standin
    found = LocalRegistry(client).reference(model_name, "1")
    assert found is not None and found.profile["features"] == FEATURES
    assert 0 < found.metrics["accuracy"] <= 1
    assert LocalRegistry(client).reference(model_name, "9") is None
    assert LocalRegistry(client).reference("no-such-model", "1") is None


# -- the window arithmetic ------------------------------------------------------------------------------

def _sample(t: float, cpu: float, server: int = 1, rss: int = 100 * 2**20) -> UsageSample:
    return UsageSample(time=t, server=server, cpu_seconds=cpu, rss_bytes=rss, processes=3)


def test_usage_starts_from_the_last_sample_before_the_window():
    cores = psutil.cpu_count()
    samples = [_sample(100, 0.0), _sample(110, cores * 2.0), _sample(120, cores * 4.0)]
    found = usage_over(samples, since=105, until=125)
    assert found["cpu_percent"] == pytest.approx(20.0)          # 2 s of every core per 10 s
    assert found["detail"]["samples"] == 2 and found["detail"]["seconds"] == 20
    assert found["memory_percent"] == pytest.approx(100 * 100 * 2**20 / psutil.virtual_memory().total, abs=1e-3)


def test_usage_skips_the_step_where_the_server_was_replaced():
    cores = psutil.cpu_count()
    samples = [_sample(0, 50.0), _sample(10, 50.0 + cores), _sample(20, 0.5 * cores, server=2),
               _sample(30, 1.5 * cores, server=2)]
    found = usage_over(samples, since=0, until=30)
    assert found["detail"]["seconds"] == 20                      # 0-10 and 20-30; not 10-20 across servers
    assert found["cpu_percent"] == pytest.approx(10.0)


def test_usage_without_samples_has_no_figures():
    found = usage_over([], since=0, until=10)
    assert found["cpu_percent"] is None and found["memory_percent"] is None and "rss_mb" not in found["detail"]
