"""A webhook receiver on loopback: records every POST by path, answers each path from a script (a list of
(status, headers) used in order, then 200), and can hold a path's answers until released."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    body: dict
    headers: dict


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    holds: dict[str, threading.Event] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def script(self, path: str, *answers: tuple[int, dict] | int) -> None:
        self.scripts[path] = [a if isinstance(a, tuple) else (a, {}) for a in answers]

    def hold(self, path: str) -> threading.Event:
        self.holds[path] = threading.Event()
        return self.holds[path]

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == path]

    def wait_for(self, count: int, timeout: float = 10) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout)


def start() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:          # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            path = self.path.split("?")[0]
            with receiver.arrived:
                receiver.received.append(Received(self.path, body, dict(self.headers)))
                receiver.arrived.notify_all()
            held = receiver.holds.get(path)
            if held is not None:
                held.wait(30)
            script = receiver.scripts.get(path) or []
            status, headers = script.pop(0) if script else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            answer = b"ok" if status < 300 else b'{"error": "scripted failure"}'
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True, name="webhook-receiver").start()
    return receiver
