"""The Webhooks port over plain HTTP (the standard library: nothing to import at cold start). Redirects are
not followed (a webhook that redirects is misconfigured, and a POST would turn into a GET); the URL, a
secret, appears in no message this module raises or logs."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from http.client import HTTPException

from lifecycle.core.notifications import WebhookAnswer, WebhookUnreachable

USER_AGENT = "mlops-notify/1"
DETAIL = 300         # characters of an error answer's body kept for the dead letter


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class HttpWebhooks:
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def post(self, url: str, body: dict, timeout: float) -> WebhookAnswer:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                return WebhookAnswer(answer.status, answer.headers.get("Retry-After"))
        except urllib.error.HTTPError as error:
            detail = _read(error)
            return WebhookAnswer(error.code, error.headers.get("Retry-After") if error.headers else None, detail)
        except urllib.error.URLError as error:
            raise WebhookUnreachable(f"no connection: {_reason(error.reason)}") from None
        except TimeoutError:
            raise WebhookUnreachable(f"no answer within {timeout:g} s") from None
        except (ConnectionError, HTTPException, OSError) as error:
            raise WebhookUnreachable(f"connection failed: {type(error).__name__}: {error}") from None


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)


def _read(error: urllib.error.HTTPError) -> str:
    try:
        return " ".join(error.read(DETAIL).decode("utf-8", "replace").split())
    except (OSError, HTTPException):
        return ""
