"""The host's access keys and the check the real host makes: a key in the `code` query parameter or the
`x-functions-key` header; the master key opens everything."""
from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web

from emulator.home import make_private, write_private

from .loader import HostError

ANONYMOUS, FUNCTION, ADMIN, SYSTEM = "anonymous", "function", "admin", "system"


@dataclass(frozen=True)
class HostKeys:
    function_key: str              # for auth_level FUNCTION routes (master also accepted)
    master_key: str                # for ADMIN routes; accepted everywhere
    eventgrid_extension_key: str   # the system key the Event Grid webhook requires (master also accepted)

    @classmethod
    def generate(cls) -> HostKeys:
        return cls(*(secrets.token_urlsafe(32) for _ in range(3)))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> HostKeys:
        """Read keys written earlier (so URLs handed out stay valid across restarts), else create them."""
        path = Path(path)
        if path.exists():
            make_private(path)
            try:
                return cls(**json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                raise HostError(f"keys file {str(path)!r} is not valid: {exc}; delete it to generate new keys") from exc
        keys = cls.generate()
        write_private(path, json.dumps(asdict(keys), indent=2))      # secrets: owner only
        return keys

    def allows(self, request: web.Request, level: str) -> bool:
        if level == ANONYMOUS:
            return True
        presented = request.query.get("code") or request.headers.get("x-functions-key")
        if not presented:
            return False
        accepted = {FUNCTION: (self.function_key, self.master_key),
                    ADMIN: (self.master_key,),
                    SYSTEM: (self.eventgrid_extension_key, self.master_key)}[level]
        # compare_digest on every candidate: timing does not tell which key was close. Header bytes that are
        # not UTF-8 arrive as surrogate escapes: encoded back as they came, they match no key (401, not 500).
        given = presented.encode("utf-8", "surrogateescape")
        return any([hmac.compare_digest(given, key.encode()) for key in accepted])


def unauthorized() -> web.Response:
    return web.Response(status=401, text="Unauthorized: a valid key is required "
                                         "(?code=KEY or header x-functions-key)")
