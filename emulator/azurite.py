"""Azurite (blob, queue, table) started by the project on 127.0.0.1, on free ports, data under a folder.

The account is Azurite's well-known development account; the connection string is the same shape as
a real storage account's, so the same SDK code runs against both."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from emulator.processes import die_with_parent

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
# Azurite's published development key; not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at (https?://\S+)")


class AzuriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class AzuriteEndpoints:
    blob: str
    queue: str
    table: str

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob}/{ACCOUNT};QueueEndpoint={self.queue}/{ACCOUNT};"
            f"TableEndpoint={self.table}/{ACCOUNT};"
        )


def azurite_command() -> list[str]:
    local = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite")
    if found:
        return [found]
    raise AzuriteError("Azurite is not installed: run `npm install` (or `make install`) in the project folder")


class Azurite:
    """A running Azurite process. Use as a context manager or call start()/stop()."""

    def __init__(self, location: str | os.PathLike[str], *, debug_log: str | None = None,
                 tls: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None, oauth: bool = False) -> None:
        """`tls` = (certificate, key) PEM files: serve HTTPS. `oauth`: also accept bearer tokens (Azurite's
        basic check of audience, issuer and lifetime; it needs `tls`), as a storage account with
        identity-based access does."""
        self.location = Path(location)
        self.debug_log = debug_log
        self.tls = tls
        self.oauth = oauth
        self.process: subprocess.Popen[str] | None = None
        self.endpoints: AzuriteEndpoints | None = None

    def start(self, timeout: float = 30) -> AzuriteEndpoints:
        self.location.mkdir(parents=True, exist_ok=True)
        args = azurite_command() + [
            "--location", str(self.location), "--silent", "--skipApiVersionCheck", "--loose",
            "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        ]
        if self.debug_log:
            args += ["--debug", self.debug_log]
        if self.tls:
            args += ["--cert", str(self.tls[0]), "--key", str(self.tls[1])]
        if self.oauth:
            args += ["--oauth", "basic"]
        # Its own process group, so Ctrl-C on the stack's terminal reaches the stack, which stops Azurite in order.
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=die_with_parent,
        )
        found: dict[str, str] = {}
        output: list[str] = []
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while len(found) < 3:
            line = self.process.stdout.readline()
            if not line:
                raise AzuriteError(f"Azurite exited during start-up: {''.join(output[-10:]).strip()}")
            output.append(line)
            if match := _LISTENING.search(line):
                found[match.group(1).lower()] = match.group(2)
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not start within {timeout:.0f} s")
        # Keep draining its output so a chatty Azurite never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        self.endpoints = AzuriteEndpoints(found["blob"], found["queue"], found["table"])
        return self.endpoints

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def stop(self, timeout: float = 10) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> AzuriteEndpoints:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
