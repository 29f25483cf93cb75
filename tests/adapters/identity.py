"""What the identity tests run against: a self-signed certificate for 127.0.0.1, and a stand-in for the
managed identity endpoint that App Service and Functions give an app (IDENTITY_ENDPOINT / IDENTITY_HEADER),
which azure-identity's DefaultAzureCredential calls for a token.

The endpoint issues tokens shaped as Microsoft Entra ID's: audience = the resource asked for, an Entra
issuer, a lifetime. Azurite's `--oauth basic` checks exactly those (not the signature), so a token for the
wrong resource, issuer or time is refused as it would be in Azure."""
from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TENANT = "72f988bf-0000-4000-8000-2d7cd011db47"
ISSUER = f"https://sts.windows.net/{TENANT}/"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM). It is its own CA,
    so the same file is the trust bundle a client is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class TokenRequest:
    resource: str
    client_id: str


@dataclass
class ManagedIdentityEndpoint:
    """The App Service / Functions managed identity endpoint (API version 2019-08-01) on 127.0.0.1."""
    header: str = field(default_factory=lambda: secrets.token_hex(16))
    requests: list[TokenRequest] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> ManagedIdentityEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.header:
                    return self._answer(401, {"error": "invalid_request", "error_description": "bad header"})
                resource = query.get("resource", "")
                endpoint.requests.append(TokenRequest(resource, query.get("client_id", "")))
                now = int(time.time())
                token = jwt.encode({"aud": resource, "iss": ISSUER, "tid": TENANT, "iat": now, "nbf": now - 60,
                                    "exp": now + 3600, "appid": query.get("client_id", ""),
                                    "oid": "11111111-2222-3333-4444-555555555555"},
                                   secrets.token_bytes(32), algorithm="HS256")
                self._answer(200, {"access_token": token, "expires_on": str(now + 3600), "resource": resource,
                                   "token_type": "Bearer", "client_id": query.get("client_id", "")})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/msi/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpsRecorder:
    """An HTTPS server on 127.0.0.1 that records each POST and answers 200 (an Event Grid topic's success)."""
    certificate: tuple[Path, Path]
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> HttpsRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, self.certificate))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def claims(authorization: str) -> dict:
    """The claims of the bearer token in an Authorization header (not verified: the test reads what was sent)."""
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Bearer", authorization
    return jwt.decode(token, options={"verify_signature": False})
