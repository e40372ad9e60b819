"""A lean HTTP/1.1 transport for the gateway's calls to the services, under httpx's client API.

httpx's default transport (httpcore over anyio) cost about 0.8 ms of CPU per call on the
benchmark machine, against 0.05 ms for the bytes themselves; the gateway makes two calls to log a
meeting and eight for an overview, so on the embedded default it was the largest part of the
gateway's CPU (bench/gateway_bench.py). This transport speaks plain HTTP/1.1 over asyncio streams:
keep-alive connections per host and port (at most `max_connections`, each reused while idle less
than `idle_s`, 15 s below the services' keep-alive, HTTP_KEEP_ALIVE_SECONDS), Content-Length and chunked bodies, and httpx's
timeouts and exceptions (connect -> ConnectTimeout / ConnectError, no answer in time ->
ReadTimeout, a broken answer -> ReadError / RemoteProtocolError), so callers see exactly what the
default transport would give them. Only http:// (the services listen on their own network).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from dataclasses import dataclass, field

import httpx

from shared.settings import HTTP_KEEP_ALIVE_SECONDS

# Request headers this transport sets itself (framing), or drops: asking for no compression keeps
# the bytes the service sent, which the gateway passes on unchanged.
_OWN_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"accept-encoding", b"keep-alive"})
_NO_BODY_STATUS = frozenset({204, 304})
_MAX_HEAD = 1 << 20


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)

    def usable(self, idle_s: float) -> bool:
        """Still open, not idle too long, and silent: an idle connection that is readable has been
        closed by the service (or sent something unasked); either way it cannot carry a request.
        Asked of the socket itself, since the event loop may not have seen the close yet."""
        if self.reader.at_eof() or self.writer.is_closing() or time.monotonic() - self.idle_since >= idle_s:
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None, float | None]:
    t = request.extensions.get("timeout", {})
    return t.get("connect"), t.get("read"), t.get("pool")


def _head(request: httpx.Request, body: bytes) -> bytes:
    url = request.url
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), url.raw_path)]
    lines += [name + b": " + value for name, value in request.headers.raw if name.lower() not in _OWN_HEADERS]
    if body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, if any
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise httpx.RemoteProtocolError("malformed chunked body")


async def _answer(conn: _Connection, method: str) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """(status, reason, headers, body, keep_alive) of the next response on the connection."""
    head = await conn.reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {status_line[:80]!r}")
    status = int(code)
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = False
    keep_alive = version == b"HTTP/1.1"
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError("malformed header line")
        name, value = name.strip(), value.strip()
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            length = int(value)
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"connection":
            keep_alive = b"close" not in value.lower() and (keep_alive or b"keep-alive" in value.lower())
    if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
        body = b""
    elif chunked:
        body = await _chunked(conn.reader)
    elif length is not None:
        body = await conn.reader.readexactly(length)
    else:  # delimited by the end of the connection
        body = await conn.reader.read()
        keep_alive = False
    return status, reason, headers, body, keep_alive


class Http11Transport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100, idle_s: float = HTTP_KEEP_ALIVE_SECONDS - 15) -> None:
        self.max_connections = max_connections
        self.idle_s = idle_s
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def _connect(self, host: str, port: int, within_s: float | None) -> _Connection:
        try:
            async with asyncio.timeout(within_s):
                reader, writer = await asyncio.open_connection(host, port, limit=_MAX_HEAD)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in {within_s}s") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from exc
        return _Connection(reader, writer)

    def _reusable(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable(self.idle_s):
                return conn
            conn.close()
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"only http:// is supported here, not {url.scheme}://")
        key = (url.host, url.port or 80)
        connect_s, read_s, pool_s = _timeouts(request)
        body = await request.aread()
        data = _head(request, body) + body
        slots = self._slots.setdefault(key, asyncio.Semaphore(self.max_connections))
        try:
            async with asyncio.timeout(pool_s):
                await slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"no free connection to {key[0]}:{key[1]} in {pool_s}s") from exc
        try:
            conn = self._reusable(key)
            if conn is not None and request.method == "GET":
                try:
                    return await self._exchange(conn, key, request, data, read_s)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    # The service closed the kept-alive connection as we sent (a restart): a read
                    # is asked again, once, on a new connection.
                    pass
                conn = None
            conn = conn or await self._connect(key[0], key[1], connect_s)
            return await self._exchange(conn, key, request, data, read_s)
        finally:
            slots.release()

    async def _exchange(self, conn: _Connection, key: tuple[str, int], request: httpx.Request, data: bytes,
                        read_s: float | None) -> httpx.Response:
        try:
            async with asyncio.timeout(read_s):
                conn.writer.write(data)
                await conn.writer.drain()
                status, reason, headers, content, keep_alive = await _answer(conn, request.method)
        except BaseException as exc:
            conn.close()  # in an unknown state: never reused
            if isinstance(exc, TimeoutError):
                raise httpx.ReadTimeout(f"no answer in {read_s}s", request=request) from exc
            if isinstance(exc, asyncio.IncompleteReadError | asyncio.LimitOverrunError | ValueError):
                raise httpx.RemoteProtocolError(f"broken answer: {exc!r}", request=request) from exc
            if isinstance(exc, OSError):
                raise httpx.ReadError(repr(exc), request=request) from exc
            raise
        if keep_alive:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(key, []).append(conn)
        else:
            conn.close()
        return httpx.Response(
            status, headers=headers, content=content, request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
