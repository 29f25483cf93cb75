"""A recording stand-in for the Azure ML service, for azure-ai-ml's own HTTP pipeline.

`MLClient(..., transport=RequestsTransport(session=service.session))` sends every management call
through `RecordedService.send`: the request is recorded (method, URL, JSON body) and answered from a
route table of service-shaped JSON (tests/adapters/responses/*.json; the Azure ML routes are in
aml_service.py). Nothing leaves the process, except what azure-ai-ml sends to storage with its own clients
(the code snapshot upload), which a test points at Azurite through the SAS link in its canned answer.
"""
from __future__ import annotations

import copy
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from azure.core.credentials import AccessToken
from requests.adapters import BaseAdapter
from urllib3.response import HTTPResponse

RESPONSES = Path(__file__).with_name("responses")

SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = "rg-mlops"
WORKSPACE = "mlw-mlops"
ARM = "https://management.azure.com"
WORKSPACE_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}")


def canned(response: str, /, **substitutions: str) -> Any:
    """A response body from responses/{name}.json, with {{key}} placeholders filled in."""
    text = (RESPONSES / f"{response}.json").read_text()
    substitutions = {"workspace_id": WORKSPACE_ID, **substitutions}
    for key, value in substitutions.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


class FakeCredential:
    """What MLClient needs from a credential: a bearer token that never expires during a test."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600 * 24)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo
        return AccessTokenInfo("fake-token", int(time.time()) + 3600 * 24)


@dataclass
class Call:
    method: str
    url: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any                               # parsed JSON, raw text, or None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[Call, re.Match], Reply | Any]


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    respond: Responder | Reply | Any
    hits: int = 0


def arm_not_found(what: str) -> Reply:
    """ARM's answer for a resource that does not exist."""
    return Reply(404, {"error": {"code": "UserError", "message": f"{what} not found",
                                 "details": [], "additionalInfo": []}})


class RecordedService(BaseAdapter):
    """A requests adapter that records calls and answers from a route table. Later routes win, so a test
    can add a route that overrides a default one. An unrouted call is answered 404 and kept in `unrouted`,
    so a test can assert that azure-ai-ml asked for nothing it did not expect."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.unrouted: list[Call] = []
        self.routes: list[Route] = []
        self.session = requests.Session()
        self.session.trust_env = False      # no proxies or netrc from the machine
        self.session.mount("https://", self)
        self.session.mount("http://", self)

    # -- the route table ------------------------------------------------------------------------------

    def route(self, method: str, path_pattern: str, respond: Responder | Reply | Any) -> Route:
        """Answer `method` on URL paths fully matching `path_pattern` (a regex; query string excluded)."""
        r = Route(method.upper(), re.compile(path_pattern, re.IGNORECASE), respond)
        self.routes.insert(0, r)
        return r

    def workspace_route(self, method: str, sub_path: str, respond: Responder | Reply | Any) -> Route:
        """A route under the workspace's ARM id, e.g. ("GET", "/jobs/(?P<name>[^/]+)", ...)."""
        return self.route(method, re.escape(WORKSPACE_ID) + sub_path, respond)

    # -- what the test looks at ----------------------------------------------------------------------

    def requests_to(self, method: str, path_pattern: str) -> list[Call]:
        pattern = re.compile(path_pattern, re.IGNORECASE)
        return [c for c in self.calls if c.method == method.upper() and pattern.search(c.path)]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("PUT", "POST", "PATCH", "DELETE")]

    # -- requests' adapter interface -------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        url = urlsplit(request.url)
        call = Call(method=request.method or "GET", url=request.url or "", path=url.path,
                    query=parse_qs(url.query), headers=dict(request.headers), body=_body(request.body))
        self.calls.append(call)
        for r in self.routes:
            if r.method == call.method and (m := r.pattern.fullmatch(call.path)):
                r.hits += 1
                reply = r.respond(call, m) if callable(r.respond) else r.respond
                if not isinstance(reply, Reply):
                    reply = Reply(200, copy.deepcopy(reply))
                return _response(request, reply)
        self.unrouted.append(call)
        return _response(request, arm_not_found(f"(no route for {call}) resource"))

    def close(self) -> None:
        pass


def _body(raw: Any) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, (bytes, str)):
        return "<stream>"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text)
    except ValueError:
        return text


def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
    content = b"" if reply.body is None else json.dumps(reply.body).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "x-ms-request-id": "recorded",
               **reply.headers}
    response = requests.Response()
    response.status_code = reply.status
    response.reason = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
                       404: "Not Found"}.get(reply.status, "Status")
    response.headers = requests.structures.CaseInsensitiveDict({**headers, "Content-Length": str(len(content))})
    response.raw = HTTPResponse(body=io.BytesIO(content), headers=response.headers, status=reply.status,
                                preload_content=False, decode_content=False)
    response.url = request.url or ""
    response.request = request
    response.encoding = "utf-8"
    return response


Complete = Callable[[dict, dict], dict]    # (resource, previous or {}) -> the resource as the service fills it in


class ArmResources:
    """ARM's semantics for the resource kinds a test lets through, over a RecordedService: PUT stores the
    resource as the service completes it (id, name, type, systemData, and what `complete` adds: a status, a
    provisioning state...) and answers with it; GET reads one; GET on the collection lists (with $top and
    $orderBy=createdtime desc); DELETE removes. Tests seed existing resources with `put()`."""

    def __init__(self, service: RecordedService) -> None:
        self.service = service
        self.items: dict[str, dict] = {}
        self.clock = 0

    def serve(self, kind: str, type_name: str, complete: Complete | None = None, *, put_status: int = 201,
              put_headers: Callable[[Call], dict[str, str]] | None = None,
              delete_headers: Callable[[Call], dict[str, str]] | None = None) -> None:
        """kind: the path under the workspace, e.g. 'jobs' or 'onlineEndpoints/[^/]+/deployments'."""
        base = re.escape(WORKSPACE_ID) + "/" + kind

        def get(call: Call, m: re.Match) -> Reply:
            found = self.items.get(call.path.lower())
            return Reply(200, found) if found else arm_not_found(f"{type_name} {m['name']}")

        def list_(call: Call, m: re.Match) -> Reply:
            prefix = call.path.lower() + "/"
            found = [v for k, v in self.items.items() if k.startswith(prefix) and "/" not in k[len(prefix):]]
            if "createdtime desc" in " ".join(call.query.get("$orderBy", [])).lower():
                found.sort(key=lambda r: r["systemData"]["createdAt"], reverse=True)
            if "$top" in call.query:
                found = found[: int(call.query["$top"][0])]
            return Reply(200, {"value": found})

        def put(call: Call, m: re.Match) -> Reply:
            resource = self.put(call.path, call.body, type_name, complete)
            return Reply(put_status, resource, put_headers(call) if put_headers else {})

        def delete(call: Call, m: re.Match) -> Reply:
            if self.items.pop(call.path.lower(), None) is None:
                return Reply(204)
            return Reply(202, None, delete_headers(call) if delete_headers else {})

        self.service.route("GET", base, list_)
        self.service.route("GET", base + "/(?P<name>[^/]+)", get)
        self.service.route("PUT", base + "/(?P<name>[^/]+)", put)
        self.service.route("DELETE", base + "/(?P<name>[^/]+)", delete)

    def put(self, path: str, body: dict, type_name: str = "", complete: Complete | None = None) -> dict:
        """Store a resource at `path` (absolute, or relative to the workspace) as the service would."""
        if not path.startswith("/subscriptions/"):
            path = f"{WORKSPACE_ID}/{path}"
        self.clock += 1
        previous = self.items.get(path.lower(), {})
        created = (previous.get("systemData", {}).get("createdAt")
                   or f"2025-05-01T10:{self.clock // 60:02d}:{self.clock % 60:02d}.000Z")
        system = body.get("systemData") or {"createdAt": created, "createdBy": "mlops-func",
                                            "createdByType": "Application",
                                            "lastModifiedAt": created, "lastModifiedBy": "mlops-func",
                                            "lastModifiedByType": "Application"}
        resource = {**copy.deepcopy(body), "id": path, "name": path.rsplit("/", 1)[-1],
                    "type": type_name or body.get("type", ""), "systemData": system}
        resource.setdefault("properties", {})
        if complete is not None:
            resource = complete(resource, previous)
        self.items[path.lower()] = resource
        return copy.deepcopy(resource)

    def get(self, path: str) -> dict | None:
        if not path.startswith("/subscriptions/"):
            path = f"{WORKSPACE_ID}/{path}"
        return self.items.get(path.lower())


METRICS_PATH = f"/subscriptions/{SUBSCRIPTION}/metrics:getBatch"      # Azure Monitor's batch metrics query


def monitor_metrics(http: RecordedService, region: str):
    """The metrics adapter talking to `http` as it would to Azure Monitor in `region`."""
    from azure.core.pipeline.transport import RequestsTransport

    from lifecycle.adapters.azure_metrics import AzureMonitorMetrics
    return AzureMonitorMetrics(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, metrics_region=region,
                               credential=FakeCredential(), transport=RequestsTransport(session=http.session))
