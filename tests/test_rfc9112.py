"""RFC 9112 points the hand-written parser got wrong, byte for byte over real sockets.

The server's deadlines are set far beyond the client's bounded wait (Client.reply gives up after 5 s),
so a request the server leaves unanswered until a timeout fails here instead of passing late.
"""

from __future__ import annotations

import pytest

from tests.test_http import App, connect, serving

PATIENT = {"head_timeout": 600.0, "idle_timeout": 600.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_bare_lf_line_endings_are_served_on_a_kept_alive_connection() -> None:
    # Section 2.2: a recipient may take a lone LF as a line terminator.
    app = App()
    async with serving(app, **PATIENT) as server, connect(server) as client:
        await client.send(b"GET /metrics HTTP/1.1\nHost: test\nAccept: text/plain\n\n")
        first = await client.reply()
        await client.send(b"GET / HTTP/1.1\r\nHost: test\nX-Mixed: yes\r\n\n")
        second = await client.reply()
    assert (first.status, first.body, second.status) == (200, b"hello\n", 200)
    assert app.requests[0].headers["accept"] == "text/plain"
    assert app.requests[1].headers["x-mixed"] == "yes"


@pytest.mark.parametrize("method", [b"GET", b"POST"])
@pytest.mark.anyio
async def test_content_length_with_transfer_encoding_is_refused_and_closed(method: bytes) -> None:
    # Section 6.1: such a request may be refused, and the connection must close after the response.
    app = App()
    async with serving(app, **PATIENT) as server, connect(server) as client:
        await client.send(
            method + b" /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: test\r\n\r\n"
        )
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert b"Content-Length and Transfer-Encoding" in reply.body
        assert await client.closed_by_server()
    assert app.requests == []  # neither the refused request nor the one smuggled behind it


@pytest.mark.anyio
async def test_obsolete_line_folding_is_replaced_by_a_space() -> None:
    # Section 5.2: a server must reject obs-fold or replace it with SP before using the value.
    app = App()
    async with serving(app, **PATIENT) as server, connect(server) as client:
        await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Folded: first\r\n \t second\r\n\r\n")
        reply = await client.reply()
        assert (reply.status, "connection" in reply.headers) == (200, False)
        assert (await client.get("/")).status == 200
    assert app.requests[0].headers["x-folded"] == "first second"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # Section 6.1: a transfer coding the server does not understand should get 501.
        (b"GET / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        # A chunked body is never read, so the connection closes after the response.
        (b"GET / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200),
        # Section 5.2: a continuation line with no field before it to continue.
        (b"GET / HTTP/1.1\r\n folded\r\nHost: test\r\n\r\n", 400),
        # Section 3.2: HTTP/1.1 without Host, or with more than one; HTTP/1.0 needs none.
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\n\r\n", 200),
    ],
    ids=["unknown-coding", "chunked-body", "leading-continuation", "no-host", "two-hosts", "http-1.0"],
)
@pytest.mark.anyio
async def test_answered_once_then_closed(raw: bytes, status: int) -> None:
    app = App()
    async with serving(app, **PATIENT) as server, connect(server) as client:
        await client.send(raw)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (status, "close")
        assert await client.closed_by_server()
    assert len(app.requests) == (status == 200)


@pytest.mark.anyio
async def test_empty_lines_before_each_request_line_are_ignored() -> None:
    # Section 2.2: a server should ignore at least one empty line before a request line; these come
    # in their own packet before the first request and between pipelined requests.
    app = App()
    async with serving(app, **PATIENT) as server, connect(server) as client:
        await client.send(b"\r\n")
        await client.send(
            b"\nGET / HTTP/1.1\r\nHost: test\r\n\r\n\r\nGET /metrics HTTP/1.1\r\nHost: test\r\n\r\n"
        )
        assert (await client.reply()).status == 200
        assert (await client.reply()).status == 200
    assert [request.path for request in app.requests] == ["/", "/metrics"]
