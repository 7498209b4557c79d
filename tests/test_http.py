"""HttpServer over real sockets on 127.0.0.1, spoken to byte for byte."""

from __future__ import annotations

import gzip
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from exporter.web.http import HttpServer, ListenAddressError, Request, Response, parse_listen_address

BIG = b"# HELP neuron_thing A thing.\n" + b'neuron_thing{core="0"} 1.5\n' * 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class App:
    """A handler that records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        if request.path == "/boom":
            raise RuntimeError("collector exploded")
        if request.path == "/big":
            return Response(200, BIG, "text/plain; version=0.0.4", headers=(("X-Extra", "1"),))
        if request.path in ("/", "/metrics"):
            return Response(200, b"hello\n")
        return Response(404, b"not found\n")


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class Client:
    """One raw HTTP/1.1 connection."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.receiver = BufferedByteReceiveStream(stream)

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def get(self, path: str, *headers: str, method: str = "GET") -> Reply:
        head = "".join(f"{h}\r\n" for h in ("Host: test", *headers))
        await self.send(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode())
        return await self.reply(head_only=method == "HEAD")

    async def reply(self, head_only: bool = False) -> Reply:
        with anyio.fail_after(5):
            head = await self.receiver.receive_until(b"\r\n\r\n", 65536)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            version, status, reason = status_line.split(" ", 2)
            assert version == "HTTP/1.1"
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(": ")
                assert name.lower() not in headers, f"duplicate header {name}"
                headers[name.lower()] = value
            length = int(headers["content-length"])
            body = b"" if head_only or not length else await self.receiver.receive_exactly(length)
            return Reply(int(status), reason, headers, body)

    async def closed_by_server(self) -> bool:
        """Wait (bounded) for the server to end the connection; True if it did so cleanly."""
        with anyio.fail_after(5):
            try:
                extra = await self.receiver.receive()
            except anyio.EndOfStream:
                return True
            raise AssertionError(f"expected EOF, got {extra!r}")


@asynccontextmanager
async def serving(app: App, **attributes: object) -> AsyncIterator[HttpServer]:
    server = await HttpServer.bind("127.0.0.1", 0)
    for name, value in attributes.items():
        setattr(server, name, value)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve, app)
            yield server
            tg.cancel_scope.cancel()
    finally:
        await server.aclose()


@asynccontextmanager
async def connect(server: HttpServer) -> AsyncIterator[Client]:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        yield Client(stream)


@pytest.mark.anyio
async def test_get_passes_the_request_and_frames_the_response() -> None:
    app = App()
    async with serving(app) as server, connect(server) as client:
        reply = await client.get("/metrics?name[]=a&x=1", "X-Thing:   spaced  ", "Accept: text/plain")
    assert reply.status == 200 and reply.reason == "OK"
    assert reply.body == b"hello\n"
    assert reply.headers["content-length"] == "6"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["date"].endswith(" GMT")
    assert "connection" not in reply.headers
    request = app.requests[0]
    assert (request.method, request.path, request.query) == ("GET", "/metrics", "name[]=a&x=1")
    assert dict(request.headers) == {"host": "test", "x-thing": "spaced", "accept": "text/plain"}


@pytest.mark.anyio
async def test_head_has_the_get_headers_and_no_body() -> None:
    async with serving(App()) as server, connect(server) as client:
        get = await client.get("/big")
        head = await client.get("/big", method="HEAD")
        # Nothing stray followed the HEAD response: the next exchange parses cleanly.
        after = await client.get("/")
    del get.headers["date"], head.headers["date"]
    assert head.headers == get.headers
    assert get.headers["x-extra"] == "1"
    assert head.body == b""
    assert after.body == b"hello\n"


@pytest.mark.anyio
async def test_keep_alive_pipelining_and_connection_close() -> None:
    app = App()
    async with serving(app) as server, connect(server) as client:
        assert (await client.get("/")).status == 200
        assert (await client.get("/nope")).status == 404  # the handler's answer, passed through
        await client.send(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\nGET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await client.reply()).status == 200
        assert (await client.reply()).status == 200
        last = await client.get("/", "Connection: close")
        assert last.headers["connection"] == "close"
        assert await client.closed_by_server()
    assert len(app.requests) == 5


@pytest.mark.anyio
async def test_http_1_0_closes() -> None:
    async with serving(App()) as server, connect(server) as client:
        await client.send(b"GET / HTTP/1.0\r\n\r\n")
        reply = await client.reply()
        assert reply.status == 200 and reply.headers["connection"] == "close"
        assert await client.closed_by_server()


@pytest.mark.anyio
async def test_other_methods_get_405() -> None:
    app = App()
    async with serving(app) as server, connect(server) as client:
        reply = await client.get("/metrics", method="DELETE")
        assert (reply.status, reply.headers["allow"]) == (405, "GET, HEAD")
        assert "connection" not in reply.headers  # no body sent, so the connection stays usable
        assert (await client.get("/")).status == 200
        # A request body is never read, so the server answers and closes.
        await client.send(b"POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello")
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (405, "close")
        assert await client.closed_by_server()
    assert [r.path for r in app.requests] == ["/"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET  / HTTP/1.1\r\nHost: test\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost test\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : test\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: test\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET metrics HTTP/1.1\r\nHost: test\r\n\r\n", 400),
        (b"GET /\xff HTTP/1.1\r\nHost: test\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: test\r\n" + b"X-Many: a\r\n" * 2000 + b"\r\n", 431),
    ],
)
@pytest.mark.anyio
async def test_malformed_requests_are_rejected_and_closed(raw: bytes, status: int) -> None:
    app = App()
    async with serving(app) as server, connect(server) as client:
        await client.send(raw)
        reply = await client.reply()
        assert reply.status == status
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()
    assert app.requests == []


@pytest.mark.anyio
async def test_absolute_form_target_and_leading_crlf() -> None:
    app = App()
    async with serving(app) as server, connect(server) as client:
        await client.send(b"\r\nGET http://node:9100/metrics?a=b HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await client.reply()).status == 200
    assert (app.requests[0].path, app.requests[0].query) == ("/metrics", "a=b")


@pytest.mark.anyio
async def test_gzip_when_accepted_and_worth_it() -> None:
    async with serving(App()) as server, connect(server) as client:
        zipped = await client.get("/big", "Accept-Encoding: deflate, gzip;q=0.5")
        plain = await client.get("/big")
        refused = await client.get("/big", "Accept-Encoding: br, gzip;q=0")
        star = await client.get("/big", "Accept-Encoding: *")
        small = await client.get("/", "Accept-Encoding: gzip")
        head = await client.get("/big", "Accept-Encoding: gzip", method="HEAD")
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == BIG
    assert int(zipped.headers["content-length"]) == len(zipped.body) < len(BIG) // 4
    assert "content-encoding" not in plain.headers and plain.body == BIG
    assert plain.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in refused.headers and refused.body == BIG
    assert star.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in small.headers and "vary" not in small.headers
    assert head.headers["content-length"] == zipped.headers["content-length"]


@pytest.mark.anyio
async def test_handler_exception_is_500_and_the_connection_survives(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(App()) as server, connect(server) as client:
        failed = await client.get("/boom")
        after = await client.get("/")
    assert failed.status == 500
    assert failed.body == b"500 Internal Server Error\n"
    assert "connection" not in failed.headers
    assert after.status == 200
    [record] = [r for r in caplog.records if r.name == "exporter.web.http"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "HTTP handler failed on GET /boom"
    assert record.exc_info is not None and "collector exploded" in str(record.exc_info[1])


@pytest.mark.anyio
async def test_idle_connection_is_closed() -> None:
    async with serving(App(), idle_timeout=0.2) as server, connect(server) as client:
        assert (await client.get("/")).status == 200
        assert await client.closed_by_server()


@pytest.mark.anyio
async def test_at_the_cap_the_oldest_idle_connection_makes_room_for_a_new_one() -> None:
    """Not a queue a handful of idle sockets can fill: the new connection is served at once, and the
    oldest one without a request in progress is cut (and counted) to make room."""
    cut: list[str] = []
    async with serving(App(), max_connections=1, on_shed=cut.append) as server, connect(server) as first:
        assert (await first.get("/")).status == 200  # now idle between requests
        async with connect(server) as second:
            with anyio.fail_after(2):
                assert (await second.get("/")).status == 200
            assert await first.closed_by_server()
    assert cut == ["evicted_idle"]


@pytest.mark.anyio
async def test_under_pressure_the_oldest_idle_goes_first_and_the_scrapers_fresh_keep_alive_stays() -> None:
    """Three idle keep-alives fill the cap; each new connection cuts the oldest, never the newest."""
    cut: list[str] = []
    async with (
        serving(App(), max_connections=3, on_shed=cut.append) as server,
        connect(server) as oldest,
        connect(server) as older,
        connect(server) as scraper,
    ):
        for client in (oldest, older, scraper):
            assert (await client.get("/")).status == 200  # each now idle, in this order
        async with connect(server) as newcomer:
            assert (await newcomer.get("/")).status == 200
            assert await oldest.closed_by_server()
            assert (await scraper.get("/")).status == 200
            async with connect(server) as another:
                assert (await another.get("/")).status == 200
                assert await older.closed_by_server()
                assert (await scraper.get("/")).status == 200
    assert cut == ["evicted_idle", "evicted_idle"]


@pytest.mark.anyio
async def test_aclose_ends_serve() -> None:
    server = await HttpServer.bind("127.0.0.1", 0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve, App())
            await server.aclose()


@pytest.mark.anyio
async def test_all_interfaces() -> None:
    server = await HttpServer.bind(None, 0)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve, App())
            async with connect(server) as client:
                assert (await client.get("/")).status == 200
            tg.cancel_scope.cancel()
    finally:
        await server.aclose()


@pytest.mark.anyio
async def test_address_in_use_is_a_listen_address_error() -> None:
    server = await HttpServer.bind("127.0.0.1", 0)
    try:
        port = server.port
        assert port > 0
        with pytest.raises(
            ListenAddressError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: address already in use$"
        ):
            await HttpServer.bind("127.0.0.1", port)
        with pytest.raises(ListenAddressError, match=rf"^cannot listen on :{port}: address already in use$"):
            await HttpServer.bind(None, port)
    finally:
        await server.aclose()


@pytest.mark.anyio
async def test_address_not_on_this_host() -> None:
    with pytest.raises(ListenAddressError, match=r"^cannot listen on 192\.0\.2\.1:0: address not available"):
        await HttpServer.bind("192.0.2.1", 0)  # TEST-NET-1: never a local address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":8000", (None, 8000)),
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::]:0", ("::", 0)),
        ("[fe80::1%eth0]:80", ("fe80::1%eth0", 80)),
        ("localhost:0", ("localhost", 0)),
        ("node-1.example.com:65535", ("node-1.example.com", 65535)),
    ],
)
def test_parse_listen_address(text: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8000", 'did you mean ":8000"'),
        ("", "expected \\[host\\]:port"),
        ("localhost", "expected \\[host\\]:port"),
        (":", "port must be a number"),
        (":http", "port must be a number"),
        (":-1", "port must be a number"),
        (": 80", "port must be a number"),
        (":65536", "port must be 0-65535, got 65536"),
        (":99999999999999999999", "port must be 0-65535"),
        ("::1:8000", "IPv6 addresses need brackets"),
        ("[nonsense]:80", "is not an IPv6 address"),
        ("[127.0.0.1]:80", "is not an IPv6 address"),
        ("300.1.1.1:80", "is not an IPv4 address"),
        ("bad host:80", "is not a valid host name"),
        ("-lead.example:80", "is not a valid host name"),
    ],
)
def test_parse_listen_address_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_listen_address(text)
