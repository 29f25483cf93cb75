"""The WSGI app a local deployment runs under gunicorn: azureml-inference-server-http's own app
(`azureml_inference_server_http.server.entry:app`) behind a check that the request carries this
server's secret.

A deployment listens on a 127.0.0.1 port that any process on the machine can reach; without this, a
request sent there directly would skip the endpoint key and the router's traffic records. The stand-in
makes one random secret per server, passes it in the server's environment (DEPLOYMENT_SECRET_ENV), and
sends it in the DEPLOYMENT_SECRET_HEADER header from the router, the readiness probe and the mirror
path. Anything else, health route included, gets 401 and never reaches the inference server.

    gunicorn ... 'emulator.aml.guard:create_app()'     # with MLOPS_DEPLOYMENT_SECRET in the environment
"""
from __future__ import annotations

import hmac
import json
import os

DEPLOYMENT_SECRET_ENV = "MLOPS_DEPLOYMENT_SECRET"
DEPLOYMENT_SECRET_HEADER = "x-mlops-deployment-secret"
_WSGI_KEY = "HTTP_" + DEPLOYMENT_SECRET_HEADER.upper().replace("-", "_")
_REFUSED = json.dumps({"error": "this deployment answers only the local endpoint router: send requests to the "
                                "endpoint's scoring URI with 'Authorization: Bearer <endpoint key>'"}).encode()
_REFUSED_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_REFUSED)))]


def guarded(app, secret: str):
    """`app`, answering 401 to every request whose DEPLOYMENT_SECRET_HEADER is not `secret`."""
    if not secret:
        raise ValueError("a deployment's secret cannot be empty")
    expected = secret.encode()

    def guard(environ, start_response):
        # WSGI header values are latin-1 strings: their bytes are what came on the wire
        given = environ.get(_WSGI_KEY, "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", list(_REFUSED_HEADERS))
            return [_REFUSED]
        del environ[_WSGI_KEY]          # score.py's run(request_headers=...) never sees the secret
        return app(environ, start_response)

    return guard


def create_app():
    """The guarded inference server app (gunicorn calls this factory in each worker)."""
    secret = os.environ.get(DEPLOYMENT_SECRET_ENV, "")
    if not secret:
        # refuse to serve unguarded: gunicorn exits, and the stand-in reports the deployment Failed with this
        raise RuntimeError(f"{DEPLOYMENT_SECRET_ENV} is not set: a local deployment needs its secret in the "
                           "environment (emulator.aml.serving.InferenceServer sets it)")
    from azureml_inference_server_http.server.entry import app as inference_app
    return guarded(inference_app, secret)
