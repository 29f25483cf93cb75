"""HTTP-triggered functions under /api/{route}, with the host's route templates and key levels.

Templates follow ASP.NET routing as the Functions host uses it: `items/{id}`, `{id:int}`, optional
`{id?}`, catch-all `{*path}`; matching ignores case; literal routes win over parameterised ones.
Constraints other than int/long/bool/alpha/guid/double are accepted but not enforced."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from emulator.timeline import Delivery, Timeline

from .bindings import http_request, http_response
from .invoker import Invoker
from .keys import HostKeys, unauthorized
from .loader import HTTP, FunctionSpec

PREFIX = "/api"

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?]+))?(\?)?\}")
_CONSTRAINTS = {"int": r"-?\d+", "long": r"-?\d+", "double": r"-?\d+(?:\.\d+)?", "bool": r"(?:true|false)",
                "alpha": r"[A-Za-z]+",
                "guid": r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"}


@dataclass(frozen=True)
class Route:
    spec: FunctionSpec
    pattern: re.Pattern[str]
    precedence: tuple[int, int, int]

    @classmethod
    def compile(cls, spec: FunctionSpec) -> "Route":
        template = spec.route or spec.name
        regex, position, params, catch_all = "", 0, 0, 0
        for match in _PARAM.finditer(template):
            literal = re.escape(template[position:match.start()])
            star, name, constraint, optional = match.groups()
            if star:
                part, catch_all = f"(?P<{name}>.*)", catch_all + 1
            else:
                part = f"(?P<{name}>{_CONSTRAINTS.get((constraint or '').split('(')[0].lower(), '[^/]+')})"
            if optional and literal.endswith("/"):     # `a/{b?}` also matches `a`
                literal, part = literal[:-1], f"(?:/{part})?"
            elif optional:
                part = f"{part}?"
            regex += literal + part
            position, params = match.end(), params + 1
        regex += re.escape(template[position:])
        literal_length = len(_PARAM.sub("", template))
        return cls(spec, re.compile(f"{regex}/?", re.IGNORECASE), (catch_all, params, -literal_length))


class RouteTable:
    def __init__(self, specs: Iterable[FunctionSpec]) -> None:
        self._routes = sorted((Route.compile(s) for s in specs if s.trigger == HTTP),
                              key=lambda route: route.precedence)

    def match(self, path: str) -> list[tuple[FunctionSpec, dict[str, str]]]:
        """Every function whose route matches the path, most specific first."""
        found = []
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match:
                found.append((route.spec, {k: v for k, v in match.groupdict().items() if v is not None}))
        return found


class HttpTriggers:
    def __init__(self, specs: Iterable[FunctionSpec], keys: HostKeys, invoker: Invoker,
                 timeline: Timeline | None) -> None:
        self._table = RouteTable(specs)
        self._keys = keys
        self._invoker = invoker
        self._timeline = timeline

    async def handle(self, request: web.Request) -> web.StreamResponse:
        candidates = self._table.match(request.match_info["tail"])
        if not candidates:
            return web.Response(status=404, text=f"no HTTP function matches {request.path}")
        chosen = next(((spec, params) for spec, params in candidates
                       if spec.methods is None or request.method in spec.methods), None)
        if chosen is None:
            allowed = sorted({m for spec, _ in candidates for m in spec.methods or ()})
            return web.Response(status=405, headers={"Allow": ", ".join(allowed)},
                                text=f"{request.method} is not allowed on {request.path}")
        spec, route_params = chosen
        if not self._keys.allows(request, spec.auth_level or "function"):
            return unauthorized()
        outcome = await self._invoker.invoke(
            spec, await http_request(request, route_params), convert=http_response,
            reason="This function was programmatically called via the host APIs.")
        # Like the host: the caller learns only that it failed; the log has the traceback.
        response = outcome.result if outcome.ok else web.Response(
            status=500, text="Internal Server Error: the function failed (see the Functions host log)")
        if self._timeline is not None:
            self._timeline.record(Delivery(
                event_id=outcome.invocation_id, event_type=f"HTTP {request.method}", subject=request.path,
                function=spec.name, attempt=1, outcome="delivered" if outcome.ok else "failed",
                source="http", detail=outcome.detail, status=response.status,
                duration_ms=round(outcome.duration_ms, 3)))
        return response
