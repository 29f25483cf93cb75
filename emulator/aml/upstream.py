"""The router's client to the inference servers: HTTP/1.1 over pooled keep-alive connections, a third of
the CPU of aiohttp's client per request (the router's hot path)."""
from __future__ import annotations

import asyncio
import time

MAX_HEAD = 64 * 1024          # an answer's status line and headers
IDLE_SECONDS = 30.0           # a pooled connection idle longer is closed (gunicorn keeps them 75 s)


class Upstream:
    """Keep-alive connections to one inference server, reused last-in first-out, one request at a time
    each. A request that finds its reused connection closed by the server before any byte of the
    answer came back (the server dropped the idle connection as it was written) is sent once more on a
    new connection. Scoring has no side effects, so this is safe; any other failure is the caller's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []

    async def send(self, data: bytes) -> tuple[int, str, bytes]:
        """data: the whole request (head and body). Returns (status, content type, body) of the answer."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.open and time.monotonic() - connection.idle_since < IDLE_SECONDS:
                try:
                    return await self._exchange(connection, data)
                except _Disconnected as lost:
                    if lost.answered:
                        raise
                break
            connection.close()
        _, connection = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        return await self._exchange(connection, data)

    async def _exchange(self, connection: _Connection, data: bytes) -> tuple[int, str, bytes]:
        try:
            answer = await connection.exchange(data)
        except BaseException:      # failed, timed out or cancelled: the answer may still come, never reuse it
            connection.close()
            raise
        if connection.keep_alive and connection.open:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class _Disconnected(ConnectionError):
    def __init__(self, answered: bool) -> None:
        super().__init__("the server closed the connection " + ("mid-answer" if answered else "without answering"))
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One connection: write a request, read one answer (Content-Length, chunked, or until close)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.keep_alive = True
        self.idle_since = 0.0
        self._waiter: asyncio.Future | None = None
        self._buffer: bytes | bytearray = b""
        self._head: tuple[int, str, int, int | None, bool] | None = None  # status, type, body start, length, keep-alive
        self._answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            head = self._head
            if head is not None and head[3] is None:          # the body ends where the connection does
                self.keep_alive = False
                waiter.set_result((head[0], head[1], bytes(self._buffer[head[2]:])))
            else:
                waiter.set_exception(_Disconnected(self._answered))

    def close(self) -> None:
        if self.open:
            self.open = False
            self.transport.close()

    async def exchange(self, data: bytes) -> tuple[int, str, bytes]:
        if not self.open:
            raise _Disconnected(False)
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self._answered, self._buffer, self._head = False, b"", None
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self._waiter = None

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.keep_alive = False        # bytes nobody asked for: the connection is out of step
            self.transport.close()
            return
        self._answered = True
        if not self._buffer:
            self._buffer = data
        else:
            if isinstance(self._buffer, bytes):
                self._buffer = bytearray(self._buffer)
            self._buffer += data
        try:
            answer = self._answer()
        except ValueError as error:
            self.keep_alive = False
            waiter.set_exception(error)
            return
        if answer is not None:
            waiter.set_result(answer)

    def _answer(self) -> tuple[int, str, bytes] | None:
        """The whole answer if it has arrived, else None; ValueError if it is not HTTP/1.x."""
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ValueError("the answer's head is too long")
                return None
            head = _parse_head(bytes(buffer[:end]), end + 4)
            if head[0] < 200:                                  # 1xx: informational, the answer follows
                self._buffer = buffer[end + 4:]
                return self._answer() if self._buffer else None
            self._head = head
        status, content_type, start, length, keep_alive = self._head
        if length is None:
            return None                                        # read until the server closes
        if length >= 0:
            if len(buffer) < start + length:
                return None
            payload, rest = buffer[start:start + length], len(buffer) - start - length
        else:
            found = _dechunk(buffer, start)
            if found is None:
                return None
            payload, rest = found
        self.keep_alive = keep_alive and rest == 0
        self._buffer, self._head = b"", None
        return status, content_type, bytes(payload)


def _parse_head(head: bytes, start: int) -> tuple[int, str, int, int | None, bool]:
    """(status, content type, body start, body length: n, -1 chunked, None until close, keep-alive)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(rest) < 3 or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    status = int(rest[:3])
    content_type, length, chunked = "application/json", None, False
    keep_alive = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(f"bad Content-Length: {value[:40]!r}")
            length = int(value)
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            keep_alive = b"close" not in tokens and (keep_alive or b"keep-alive" in tokens)
    if status in (204, 304):
        length = 0
    elif chunked:
        length = -1
    if length is None:
        keep_alive = False
    return status, content_type, start, length, keep_alive


def _dechunk(buffer: bytes | bytearray, position: int) -> tuple[bytes, int] | None:
    """A chunked body from `position`: (body, bytes left after it), or None if not all there yet."""
    parts = []
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        size_field = bytes(buffer[position:end]).split(b";")[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise ValueError(f"bad chunk size: {size_field[:20]!r}") from None
        position = end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", position)
            while trailer_end > position:                      # skip trailer fields up to the empty line
                position = trailer_end + 2
                trailer_end = buffer.find(b"\r\n", position)
            if trailer_end < 0:
                return None
            return b"".join(parts), len(buffer) - trailer_end - 2
        if len(buffer) < position + size + 2:
            return None
        parts.append(bytes(buffer[position:position + size]))
        position += size + 2
