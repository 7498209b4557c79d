"""Transport only: a small HTTP/1.1 server on anyio for /metrics and the health endpoints.

h11 parses requests and frames responses (RFC 9112); this module keeps the accept loop, the deadlines
and limits, gzip, and the Guard hooks. GET and HEAD only, keep-alive, gzip for larger bodies, bounded
header size. Routing is the handler's
job; this module never looks at the path. Access control (TLS, basic auth) is a Guard the caller plugs
in (webguard.py); without one, plain HTTP for everyone.

Slow or idle clients cannot keep Prometheus out: a TLS handshake and every request head must complete
within HEAD_TIMEOUT of their start (Prometheus sends its head at once), a keep-alive connection may idle
IDLE_TIMEOUT between requests, and every connection is accepted at once. When MAX_CONNECTIONS are open,
the oldest connection that has not completed a request (in its handshake or head, or idle between
requests) is shed to make room, never the new one. Every cut connection is counted by reason.
"""

from __future__ import annotations

import errno
import gzip
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from types import MappingProxyType
from typing import Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
HEAD_TIMEOUT = 5.0
"""Seconds a TLS handshake, or a request head from its first byte, may take to complete."""
IDLE_TIMEOUT = 30.0
"""Seconds a keep-alive connection may wait for its next request (and a client to accept a response)."""
MAX_CONNECTIONS = 1024
"""Open connections before the oldest one without a request in progress is shed for a new one."""
SHED_REASONS = (
    "handshake_timeout",
    "head_timeout",
    "idle_timeout",
    "evicted_handshake",
    "evicted_head",
    "evicted_idle",
    "over_limit",
)
"""Why a connection was cut: a deadline passed, or it was shed to make room (over_limit: the new
connection itself, when every open one is busy sending a response)."""
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 1
"""Speed over size: a ~1 MB exposition compresses about as well at level 1, several times faster."""
LINGER_SECONDS = 1.0
"""After the last response on a connection, how long unread request bytes are drained before closing."""
ALLOW = "GET, HEAD"

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]+")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")
_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Request:
    """One parsed request; `path` and `query` are as sent (not percent-decoded), header names lower-cased."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    """What a handler returns; Content-Length, Content-Encoding and Connection are the server's to set."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Response]
"""Synchronous and called in the event loop, so it must be quick (rendering from a snapshot is)."""


class Guard(Protocol):
    """Access control around the transport (webguard.WebGuard): TLS per connection, checks per request."""

    async def secure(self, stream: anyio.abc.SocketStream) -> anyio.abc.ByteStream | None:
        """The stream to speak HTTP on (e.g. after a TLS handshake), or None to close the connection."""

    async def admit(self, request: Request, peer: str) -> Response | None:
        """None to let the request through to the handler, else the response that refuses it."""

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers added to every response."""


class _Open:
    """The null guard: plain HTTP, everyone admitted."""

    async def secure(self, stream: anyio.abc.SocketStream) -> anyio.abc.ByteStream | None:
        return stream

    async def admit(self, request: Request, peer: str) -> Response | None:
        return None

    headers: tuple[tuple[str, str], ...] = ()


class ListenAddressError(Exception):
    """The server cannot listen where asked; the message is one readable line."""


def parse_listen_address(text: str) -> tuple[str | None, int]:
    """'[host]:port' -> (host or None for all interfaces, port); ValueError with a readable message."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        hint = f'; did you mean ":{text}"?' if _DIGITS.fullmatch(text) else ""
        raise ValueError(f"expected [host]:port, e.g. :8000 or 127.0.0.1:8000, got {text!r}{hint}")
    if not _DIGITS.fullmatch(port_text):
        raise ValueError(f"port must be a number, got {port_text!r} in {text!r}")
    if len(port_text) > 5 or int(port_text) > 65535:
        raise ValueError(f"port must be 0-65535, got {port_text}")
    port = int(port_text)
    if not host:
        return None, port
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"{inner!r} in {text!r} is not an IPv6 address") from None
        return inner, port
    if ":" in host:
        raise ValueError(f"IPv6 addresses need brackets, e.g. [::1]:8000, got {text!r}")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in {text!r} is not an IPv4 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{host!r} in {text!r} is not a valid host name")
    return host, port


def _format_address(host: str | None, port: int) -> str:
    if host is None:
        return f":{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_BIND_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "address not available on this host",
}


class _Reject(Exception):
    """A request the server answers itself, and then closes the connection."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Conn:
    """An open connection's bookkeeping: what it is waiting for, and how to cut it."""

    scope: anyio.CancelScope
    state: str = "handshake"
    """handshake, head (reading a request head), idle (between requests) or busy (responding)."""
    shed_as: str | None = None


@dataclass(frozen=True)
class _Parsed:
    request: Request
    has_body: bool
    """A request body is never read, so a connection that sent one closes after the response."""


class HttpServer:
    """A bound listener; `serve()` runs it, each connection in its own task."""

    def __init__(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], listeners: list[anyio.abc.SocketListener]
    ) -> None:
        """Wrap bound listeners; use `HttpServer.bind()` rather than calling this."""
        self._listener = listener
        self._listeners = listeners
        # Public so tests (and only tests, in practice) can shorten them; read when serve() starts.
        self.head_timeout = HEAD_TIMEOUT
        self.idle_timeout = IDLE_TIMEOUT
        self.max_connections = MAX_CONNECTIONS
        self.on_shed: Callable[[str], None] = lambda reason: None
        """Called with the reason each time a connection is cut (a self-metric counts them)."""
        self._guard: Guard = _Open()
        self._open: dict[int, _Conn] = {}
        self._serving = anyio.CancelScope()
        """Open connections in the order they were accepted (the oldest is shed first)."""

    @classmethod
    async def bind(cls, host: str | None, port: int) -> HttpServer:
        """Listen on host:port (None: every interface, IPv4 and IPv6); ListenAddressError if impossible."""
        where = _format_address(host, port)
        try:
            # SO_REUSEADDR (anyio's default) lets a restart rebind past TIME_WAIT, yet still refuses
            # a port another socket is listening on; SO_REUSEPORT would not, so it stays off.
            multi = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
        except socket.gaierror as exc:
            raise ListenAddressError(f"cannot listen on {where}: unknown host ({exc.strerror})") from None
        except OSError as exc:
            reason = _BIND_REASONS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()
            raise ListenAddressError(f"cannot listen on {where}: {reason}") from None
        except (UnicodeError, ValueError) as exc:
            raise ListenAddressError(f"cannot listen on {where}: invalid host ({exc})") from None
        listeners = [
            listener for listener in multi.listeners if isinstance(listener, anyio.abc.SocketListener)
        ]
        return cls(multi, listeners)

    @property
    def port(self) -> int:
        """The bound port (the one the kernel chose, when asked for port 0)."""
        port: int = self._listener.extra(anyio.abc.SocketAttribute.local_port)
        return port

    async def aclose(self) -> None:
        """Stop listening; a running serve() then cuts its connections and returns.

        serve() is cancelled first: closing a socket does not wake an accept() already waiting on it.
        """
        self._serving.cancel()
        await self._listener.aclose()

    async def serve(
        self,
        handler: Handler,
        *,
        guard: Guard | None = None,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept and serve connections until cancelled or closed; started() once accepting."""
        if guard is not None:
            self._guard = guard
        with self._serving:
            async with anyio.create_task_group() as connections:
                async with anyio.create_task_group() as acceptors:
                    for listener in self._listeners:
                        acceptors.start_soon(self._accept_loop, listener, handler, connections)
                    task_status.started()
                connections.cancel_scope.cancel()

    async def _accept_loop(
        self, listener: anyio.abc.SocketListener, handler: Handler, connections: anyio.abc.TaskGroup
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:
                # Out of file descriptors and the like: keep serving the open connections and try again
                # shortly instead of spinning or taking the exporter down.
                log.warning("accepting an HTTP connection failed: %s", exc)
                await anyio.sleep(0.1)
                continue
            if len(self._open) >= self.max_connections and not self._shed_one():
                self._count("over_limit")
                await stream.aclose()
                continue
            connections.start_soon(self._connection, stream, handler)

    def _shed_one(self) -> bool:
        """Cut the oldest connection that has no request in progress; False if every one is busy."""
        for conn in self._open.values():
            if conn.state != "busy" and conn.shed_as is None:
                conn.shed_as = f"evicted_{conn.state}"
                conn.scope.cancel()
                return True
        return False

    def _count(self, reason: str) -> None:
        log.debug("HTTP connection cut: %s", reason)
        self.on_shed(reason)

    async def _connection(self, stream: anyio.abc.SocketStream, handler: Handler) -> None:
        conn = _Conn(anyio.CancelScope())
        key = id(conn)
        self._open[key] = conn
        try:
            with conn.scope:
                async with stream:
                    secured = None
                    with anyio.move_on_after(self.head_timeout) as handshake:
                        secured = await self._guard.secure(stream)
                    if handshake.cancelled_caught:
                        conn.shed_as = conn.shed_as or "handshake_timeout"
                    elif secured is not None:
                        await self._exchange_all(secured, handler, peer_of(stream), conn)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError) as exc:
            log.debug("HTTP connection dropped: %r", exc)
        except Exception:
            # A bug here must cost one connection, not the server (and with it the exporter).
            log.exception("HTTP connection failed")
        finally:
            del self._open[key]
            if conn.shed_as is not None:
                self._count(conn.shed_as)

    async def _exchange_all(
        self, stream: anyio.abc.ByteStream, handler: Handler, peer: str, conn: _Conn
    ) -> None:
        """Serve requests on one connection until it is closed, idle or unusable.

        Each request gets its own h11 state machine, seeded with the bytes that followed the previous
        request's head, so nothing one request left behind (h11's error state, a body never read)
        reaches the next. The first request's head deadline runs from the start; later ones idle first.
        """
        pending = b""
        waiting = False
        while True:
            if waiting and not pending:
                conn.state = "idle"
                received: bytes | None = b""
                with anyio.move_on_after(self.idle_timeout) as idle:
                    received = await _receive(stream)
                if idle.cancelled_caught:
                    conn.shed_as = conn.shed_as or "idle_timeout"
                    return
                if received is None:
                    return
                pending = received
            waiting = True
            conn.state = "head"
            protocol = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
            parsed: _Parsed | None = None
            try:
                with anyio.move_on_after(self.head_timeout) as head_wait:
                    parsed = await _receive_head(stream, protocol, pending)
            except _Reject as exc:
                await self._send_and_close(stream, _render_rejection(protocol, exc.status, str(exc)))
                return
            if head_wait.cancelled_caught:
                conn.shed_as = conn.shed_as or "head_timeout"
                return
            if parsed is None:
                return
            conn.state = "busy"
            refusal = await self._guard.admit(parsed.request, peer)
            response = refusal if refusal is not None else _respond(handler, parsed.request)
            data = _render(
                protocol, response, parsed.request, close=parsed.has_body, extra_headers=self._guard.headers
            )
            # h11 ends in DONE when the connection may carry another request (HTTP/1.1, no
            # "Connection: close" either way), else in MUST_CLOSE.
            if protocol.our_state is not h11.DONE:
                await self._send_and_close(stream, data)
                return
            if not await self._send(stream, data):
                return
            pending = protocol.trailing_data[0]

    async def _send(self, stream: anyio.abc.ByteStream, data: bytes) -> bool:
        """Send, giving up (False) on a client that stops reading for the idle timeout."""
        with anyio.move_on_after(self.idle_timeout):
            await stream.send(data)
            return True
        log.debug("HTTP client stopped reading; closing")
        return False

    async def _send_and_close(self, stream: anyio.abc.ByteStream, data: bytes) -> None:
        """Send the last response, then half-close and drain briefly before the caller closes.

        Closing with unread request bytes makes the kernel send a reset, which can destroy the
        response before the client reads it (the 400/431 cases are exactly those with unread bytes).
        """
        if not await self._send(stream, data):
            return
        try:
            await stream.send_eof()
        except NotImplementedError:
            return  # anyio's TLS stream cannot half-close; the caller closes it outright
        drained = 0
        with anyio.move_on_after(LINGER_SECONDS):
            while drained < 16 * MAX_HEADER_BYTES:
                try:
                    drained += len(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break


async def _receive(stream: anyio.abc.ByteStream) -> bytes | None:
    """The next bytes from the client, or None when it has closed its side."""
    try:
        return await stream.receive()
    except anyio.EndOfStream:
        return None


async def _receive_head(
    stream: anyio.abc.ByteStream, protocol: h11.Connection, pending: bytes
) -> _Parsed | None:
    """Feed h11 until a request head is complete; None if the client leaves first, _Reject if bad.

    Empty lines before the request line are dropped (RFC 9112, section 2.2: a server should ignore
    at least one); h11 would refuse them.
    """
    fed = 0
    data: bytes | None = pending
    while data is not None:
        if not fed:
            data = data.lstrip(b"\r\n")
        if data:
            # An empty receive_data() tells h11 the client closed; end of stream is handled here.
            protocol.receive_data(data)
            fed += len(data)
        try:
            event = protocol.next_event()
        except h11.RemoteProtocolError as exc:
            raise _Reject(HTTPStatus(exc.error_status_hint), str(exc)) from None
        if isinstance(event, h11.Request):
            return _parse_request(event, head_bytes=fed - len(protocol.trailing_data[0]))
        data = await _receive(stream)
    return None


def _parse_request(event: h11.Request, head_bytes: int) -> _Parsed:
    """Our checks on a head h11 has parsed: size, version, framing and target; _Reject if they fail."""
    # h11 bounds only a head still incomplete; one that arrived whole in a single read can be larger.
    if head_bytes > MAX_HEADER_BYTES:
        raise _Reject(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
    if not event.http_version.startswith(b"1."):
        raise _Reject(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.x is supported")
    target = event.target.decode("ascii")  # h11 admits only visible ASCII in a target
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
    elif "://" in target:
        split = urlsplit(target)
        path, query = split.path or "/", split.query
    else:
        raise _Reject(HTTPStatus.BAD_REQUEST, "malformed request target")
    headers: dict[str, str] = {}
    for name_b, value_b in event.headers:  # names lower-cased, obsolete line folding unfolded by h11
        name = name_b.decode("ascii")
        value = value_b.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if "content-length" in headers and "transfer-encoding" in headers:
        # RFC 9112, section 6.1: a sign of request smuggling; refusing it is allowed, serving it is not safe.
        raise _Reject(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")
    has_body = "transfer-encoding" in headers or int(headers.get("content-length", "0")) > 0
    request = Request(event.method.decode("ascii"), path, query, MappingProxyType(headers))
    return _Parsed(request, has_body)


def _respond(handler: Handler, request: Request) -> Response:
    """405 for other methods, else the handler's response, or 500 if that fails."""
    if request.method not in ("GET", "HEAD"):
        return _error(HTTPStatus.METHOD_NOT_ALLOWED, headers=(("Allow", ALLOW),))
    try:
        response = handler(request)
        if not 200 <= response.status <= 599:
            raise ValueError(f"handler returned status {response.status}; only 200-599 are supported")
        return response
    except Exception:
        log.exception("HTTP handler failed on %s %s", request.method, request.path)
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR)


def _error(status: HTTPStatus, detail: str = "", headers: tuple[tuple[str, str], ...] = ()) -> Response:
    text = f"{status.value} {status.phrase}" + (f": {detail}" if detail else "")
    return Response(status.value, f"{text}\n".encode(), headers=headers)


def _render_rejection(protocol: h11.Connection, status: HTTPStatus, detail: str = "") -> bytes:
    """An error for a request too broken to serve; the connection closes after it."""
    return _render(protocol, _error(status, detail), close=True)


def _render(
    protocol: h11.Connection,
    response: Response,
    request: Request | None = None,
    *,
    close: bool,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The response as bytes on the wire, framed by h11: head, then the (possibly gzipped) body unless HEAD.

    h11 adds "Connection: close" itself when the request asked for it or was HTTP/1.0; `close` asks for
    it when the server will not read on (a request body it did not read, a rejected request).
    """
    body = response.body
    varying: list[tuple[bytes, bytes]] = []
    if len(body) > GZIP_MIN_BYTES:
        # The representation depends on Accept-Encoding whenever it is big enough to compress.
        varying.append((b"Vary", b"Accept-Encoding"))
        if request is not None and _accepts_gzip(request.headers.get("accept-encoding")):
            # mtime=0: identical bodies give identical bytes, which keeps responses reproducible.
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            varying.append((b"Content-Encoding", b"gzip"))
    headers = [
        (b"Content-Type", response.content_type.encode("latin-1", errors="replace")),
        (b"Content-Length", str(len(body)).encode("ascii")),
        (b"Date", formatdate(usegmt=True).encode("ascii")),
        *varying,
    ]
    for name, value in (*response.headers, *extra_headers):
        name_b, value_b = name.encode("latin-1", errors="replace"), value.encode("latin-1", errors="replace")
        if name.lower() in _FRAMING_HEADERS:
            continue
        if not _TOKEN.fullmatch(name_b) or _BAD_VALUE_BYTE.search(value_b):
            log.error("dropping response header %r: not a valid HTTP header", name)
            continue
        headers.append((name_b, value_b))
    if close:
        headers.append((b"Connection", b"close"))
    reason = _REASONS.get(response.status, b"")
    head = protocol.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
    if request is not None and request.method == "HEAD":
        body = b""  # h11 frames a HEAD response with the GET's Content-Length and no body
    elif body:
        protocol.send(h11.Data(data=body))
    protocol.send(h11.EndOfMessage())
    return (head or b"") + body


def peer_of(stream: anyio.abc.ByteStream) -> str:
    """'host:port' of the client, for logs."""
    address = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "unknown peer"


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value allows gzip (an explicit q=0 refuses it, '*' allows it)."""
    if not accept_encoding:
        return False
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0
