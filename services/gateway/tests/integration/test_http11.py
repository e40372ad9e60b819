"""The gateway's HTTP/1.1 transport (adapters/http11.py) over real sockets on 127.0.0.1: against
uvicorn as the services run it, and against a bare asyncio server for the framings and failures
uvicorn does not produce on demand. What a caller must get is what httpx's own transport gives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from services.gateway.adapters.http11 import Http11Transport
from services.gateway.tests.support import serve

pytestmark = pytest.mark.integration


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/echo/{name}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(name: str, request: Request) -> dict[str, object]:
        return {"method": request.method, "name": name, "query": str(request.url.query),
                "body": (await request.body()).decode(), "who": request.headers.get("x-actor-id")}

    @app.get("/chunked")
    async def chunked() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(50):
                yield f"part {i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @app.delete("/nothing", status_code=204)
    async def nothing() -> Response:
        return Response(status_code=204)

    return app


async def test_requests_and_answers_arrive_whole_over_kept_alive_connections() -> None:
    async with serve(echo_app()) as url, httpx.AsyncClient(base_url=url, transport=Http11Transport()) as client:
        r = await client.post("/echo/caf%C3%A9", params={"q": "a b&c"}, json={"note": "Añil — ünïcode"},
                              headers={"X-Actor-Id": "mentor-1"})
        assert r.status_code == 200
        seen = r.json()
        assert json.loads(seen.pop("body")) == {"note": "Añil — ünïcode"}
        assert seen == {"method": "POST", "name": "café", "query": "q=a+b%26c", "who": "mentor-1"}
        big = "x" * 3_000_000
        r = await client.put("/echo/big", content=big)
        assert r.json()["body"] == big
        r = await client.get("/chunked")
        assert r.text == "".join(f"part {i};" for i in range(50))
        r = await client.delete("/nothing")
        assert (r.status_code, r.content) == (204, b"")
        answers = await asyncio.gather(*(client.get(f"/echo/n{i}") for i in range(50)))
        assert [a.json()["name"] for a in answers] == [f"n{i}" for i in range(50)]


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A bare HTTP server on 127.0.0.1; yields its URL and a list counting connections accepted."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


async def test_one_connection_carries_many_requests_and_a_close_delimited_answer_is_read_to_the_end() -> None:
    async def keep_alive_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")  # no length: EOF ends it
        await writer.drain()

    async with raw_server(keep_alive_then_close) as (url, accepted), httpx.AsyncClient(
        base_url=url, transport=Http11Transport()
    ) as client:
        assert [(await client.get("/")).text for _ in range(3)] == ["ok", "ok", "ok"]
        assert (await client.get("/")).text == "until the end"
        assert len(accepted) == 1


async def test_a_read_on_a_connection_the_service_closed_is_asked_again_on_a_new_one() -> None:
    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh")
        await writer.drain()
        # ... and close the kept-alive connection, as a restarting service does.

    async with raw_server(answer_once) as (url, accepted), httpx.AsyncClient(
        base_url=url, transport=Http11Transport()
    ) as client:
        assert (await client.get("/")).text == "fresh"
        await asyncio.sleep(0.1)
        assert (await client.get("/")).text == "fresh"
        assert (await client.post("/", json={})).text == "fresh"
        assert len(accepted) == 3


async def test_failures_are_httpx_errors_a_caller_already_handles() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    transport = Http11Transport()
    async with raw_server(silent) as (url, _):
        with pytest.raises(httpx.ReadTimeout):
            await httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.3)).get(url)
    async with raw_server(garbage) as (url, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await httpx.AsyncClient(transport=transport).get(url)
    async with raw_server(cut_short) as (url, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await httpx.AsyncClient(transport=transport).get(url)
    async with raw_server(silent) as (url, _):
        pass  # closed: nothing listens on its port any more
    with pytest.raises(httpx.ConnectError):
        await httpx.AsyncClient(transport=transport).get(url)
    with pytest.raises(httpx.UnsupportedProtocol):
        await httpx.AsyncClient(transport=transport).get("https://127.0.0.1:1/")
    await transport.aclose()
