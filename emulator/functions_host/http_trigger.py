"""HTTP-triggered functions under /api/{route}, with the host's route templates and key levels.

Templates follow ASP.NET routing as the Functions host uses it: `items/{id}`, `{id:int}`, optional
`{id?}`, catch-all `{*path}`; matching ignores case; literal routes win over parameterised ones.
int and long must also fit 32 and 64 bits (ASP.NET's constraints parse the value). Constraints other
than int/long/bool/alpha/guid/double are accepted but not enforced."""
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
_BITS = {"int": 32, "long": 64}


@dataclass(frozen=True)
class Route:
    spec: FunctionSpec
    pattern: re.Pattern[str]
    precedence: tuple[int, int, int]
    bounded: tuple[tuple[str, int], ...] = ()     # (parameter, bits) of int and long parameters

    @classmethod
    def compile(cls, spec: FunctionSpec) -> Route:
        template = spec.route or spec.name
        regex, position, params, catch_all, bounded = "", 0, 0, 0, []
        for match in _PARAM.finditer(template):
            literal = re.escape(template[position:match.start()])
            star, name, constraint, optional = match.groups()
            if star:
                part, catch_all = f"(?P<{name}>.*)", catch_all + 1
            else:
                kind = (constraint or "").split("(")[0].lower()
                part = f"(?P<{name}>{_CONSTRAINTS.get(kind, '[^/]+')})"
                if kind in _BITS:
                    bounded.append((name, _BITS[kind]))
            if optional and literal.endswith("/"):     # `a/{b?}` also matches `a`
                literal, part = literal[:-1], f"(?:/{part})?"
            elif optional:
                part = f"{part}?"
            regex += literal + part
            position, params = match.end(), params + 1
        regex += re.escape(template[position:])
        literal_length = len(_PARAM.sub("", template))
        return cls(spec, re.compile(f"{regex}/?", re.IGNORECASE), (catch_all, params, -literal_length),
                   tuple(bounded))

    def fits(self, params: dict[str, str]) -> bool:
        return all(name not in params or _fits(params[name], bits) for name, bits in self.bounded)


class RouteTable:
    def __init__(self, specs: Iterable[FunctionSpec]) -> None:
        self._routes = sorted((Route.compile(s) for s in specs if s.trigger == HTTP),
                              key=lambda route: route.precedence)

    def match(self, path: str) -> list[tuple[FunctionSpec, dict[str, str]]]:
        """Every function whose route matches the path, most specific first."""
        found = []
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            params = {k: v for k, v in match.groupdict().items() if v is not None} if match else {}
            if match and route.fits(params):
                found.append((route.spec, params))
        return found


class HttpTriggers:
    def __init__(self, specs: Iterable[FunctionSpec], keys: HostKeys, invoker: Invoker,
                 timeline: Timeline | None) -> None:
        self._table = RouteTable(specs)
        self._keys = keys
        self._invoker = invoker
        self._timeline = timeline

    async def handle(self, request: web.Request) -> web.StreamResponse:
        bad_host = _bad_host(request)
        if bad_host:                 # Kestrel answers these before any routing
            return web.Response(status=400, text=bad_host)
        candidates = self._table.match(request.match_info["tail"])
        if not candidates:
            return web.Response(status=404, text=f"no HTTP function matches {request.path}")
        chosen = next(((spec, params) for spec, params in candidates
                       if spec.methods is None or request.method in spec.methods), None)
        if chosen is None:
            # The host's router answers 404, not 405, when only the method is wrong
            # (Azure/azure-functions-host#10098).
            allowed = sorted({m for spec, _ in candidates for m in spec.methods or ()})
            return web.Response(status=404, text=f"no HTTP function takes {request.method} {request.path}; "
                                                 f"its route takes {', '.join(allowed)}")
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



def _fits(number: str, bits: int) -> bool:
    digits = number.lstrip("-").lstrip("0")
    return len(digits) <= 19 and -(1 << (bits - 1)) <= int(number) < 1 << (bits - 1)   # no int() of 5,000 digits


def _bad_host(request: web.Request) -> str:
    """Why the Host header cannot make the request's URL (func.HttpRequest.url needs one), or ''."""
    try:
        request.url                  # noqa: B018  (built from the Host header on first use, then cached)
    except ValueError as exc:        # yarl: a port out of range, an unclosed [ ...
        return (f"Bad Request: the Host header {request.headers.get('Host', '')!r} is not a valid host[:port] "
                f"({exc})")
    return ""
