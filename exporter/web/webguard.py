"""Enforces the web config: TLS on each connection, rate limit and basic auth on each request.

The config is re-read when the web config file or a certificate, key or CA file it names changes
(checked by stat() on every connection and request, which costs microseconds), so certificates rotate
without a restart. A new config that does not load is logged and counted, and the last good one stays
in force: a typo during a rotation must not open the exporter up, nor lock Prometheus out.

Every rejection is counted by reason in Health and logged with the peer address and the reason, at
most once a minute per reason so a scanner cannot flood the log. Nothing secret is ever logged: not a
password, not a hash, not a user name that is not configured (it may be a password typed in the
wrong field).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from exporter.health import Health
from exporter.web.basicauth import BasicAuth, Verdict
from exporter.web.http import Request, Response, peer_of
from exporter.web.tlscontext import server_context
from exporter.web.webconfig import RateLimit, WebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
LOG_EVERY = 60.0
"""Seconds between two log lines for the same rejection reason; the count covers the rest."""
PLAIN_HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
"""What Go's servers (node_exporter, dcgm-exporter) answer, so clients see the same thing everywhere."""
TLS_HANDSHAKE = 0x16
"""The first byte of every TLS connection: a handshake record."""
UNAUTHORIZED_HEADERS = (("WWW-Authenticate", 'Basic realm="neuron-exporter", charset="UTF-8"'),)

Fingerprint = tuple[tuple[str, int, int, int, int] | tuple[str], ...]


class WebGuard:
    """The live web config, its SSL context and its checks; `load()` builds one or raises."""

    def __init__(self, config: WebConfig, health: Health, clock: Callable[[], float] = time.monotonic):
        """Use `WebGuard.load()`; this takes a config already validated."""
        self._health = health
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._watched: tuple[Path, ...] = ()
        self._fingerprint: Fingerprint = ()
        self._install(config, _context(config))

    @classmethod
    def load(cls, path: Path, health: Health) -> WebGuard:
        """Read and validate `path` and build its SSL context; WebConfigError if it cannot be used."""
        return cls(load_web_config(path), health)

    def describe(self) -> str:
        """For the start-up log line: what protects the endpoint."""
        parts = []
        if self._config.tls is not None:
            parts.append(f"TLS, client certificates: {self._config.tls.client_auth}")
        if self._auth is not None:
            users = len(self._config.basic_auth_users or {})
            parts.append(f"basic auth, {users} user{'' if users == 1 else 's'}")
        if self._config.rate_limit is not None:
            parts.append("rate limited")
        return ", ".join(parts) or "no TLS, no auth"

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Response headers the config adds to every response."""
        return self._config.headers

    def refresh(self) -> None:
        """Re-read the config if one of its files changed since the last look."""
        fingerprint = _fingerprint(self._watched)
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        path = self._config.path
        assert path is not None, "only a config loaded from a file is watched"
        try:
            config = load_web_config(path)
        except WebConfigError as exc:
            self._reload_failed(str(exc))
            return
        try:
            context = _context(config)
        except WebConfigError as exc:
            # Also watch what the failed config names, so fixing only its certificate is noticed.
            self._watched = tuple(dict.fromkeys((*self._config.watched_files(), *config.watched_files())))
            self._fingerprint = _fingerprint(self._watched)
            self._reload_failed(str(exc))
            return
        self._install(config, context)
        self._health.web_config_reloads["success"] += 1
        log.info("web config %s reloaded (%s)", path, self.describe())

    def _reload_failed(self, message: str) -> None:
        self._health.web_config_reloads["failure"] += 1
        self._health.web_config_loaded = False
        log.error("%s; keeping the previous web config", message)

    def _install(self, config: WebConfig, context: ssl.SSLContext | None) -> None:
        self._config = config
        self._context = context
        self._auth = BasicAuth(config.basic_auth_users) if config.basic_auth_users else None
        self._bucket = TokenBucket(config.rate_limit, self._clock) if config.rate_limit else None
        self._health.rejection_reasons = _reasons(config)
        self._health.web_config_loaded = True
        self._watched = config.watched_files()
        self._fingerprint = _fingerprint(self._watched)
        if config.basic_auth_users and config.tls is None:
            log.warning("basic auth without TLS: passwords cross the network in clear text")

    async def secure(self, stream: anyio.abc.SocketStream) -> anyio.abc.ByteStream | None:
        """The stream to speak HTTP on: the TLS layer when configured; None to close the connection."""
        self.refresh()
        context = self._context
        if context is None:
            return stream
        peer = peer_of(stream)
        first = b""
        with anyio.move_on_after(HANDSHAKE_TIMEOUT):
            try:
                first = await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return None
        if not first:
            return None
        if first[0] != TLS_HANDSHAKE:
            self._reject("plain_http", peer, "plain HTTP on the TLS port")
            await stream.send(PLAIN_HTTP_ANSWER)
            return None
        try:
            with anyio.fail_after(HANDSHAKE_TIMEOUT):
                tls = await TLSStream.wrap(
                    _Rewound(stream, first), server_side=True, ssl_context=context, standard_compatible=False
                )
        except ssl.SSLError as exc:
            reason = _handshake_reason(exc)
            self._reject(reason, peer, f"TLS handshake failed: {exc.reason or exc.__class__.__name__}")
            return None
        except TimeoutError:
            self._reject("tls_handshake", peer, "TLS handshake timed out")
            return None
        tls_settings = self._config.tls
        if tls_settings is not None and tls_settings.client_allowed_sans:
            names = _subject_alt_names(tls.extra(TLSAttribute.peer_certificate, None))
            if not names & tls_settings.client_allowed_sans:
                self._reject("client_cert_san", peer, "client certificate has no allowed SAN")
                return None
        return tls

    async def admit(self, request: Request, peer: str) -> Response | None:
        """None to serve the request, else the response that refuses it (429 or 401)."""
        self.refresh()
        if self._bucket is not None and not self._bucket.take():
            self._reject("rate_limited", peer, "over the rate limit")
            return Response(429, b"429 Too Many Requests\n")
        if self._auth is None:
            return None
        verdict, user = await self._auth.check(request.headers.get("authorization"))
        if verdict is Verdict.OK:
            return None
        detail = "no basic auth credentials"
        if verdict is Verdict.BAD_CREDENTIALS:
            detail = f"wrong password for user {user!r}" if user else "unknown user"
        self._reject(verdict.value, peer, f"{detail} ({request.method} {request.path})")
        return Response(401, b"401 Unauthorized\n", headers=UNAUTHORIZED_HEADERS)

    def _reject(self, reason: str, peer: str, detail: str) -> None:
        self._health.http_rejections[reason] += 1
        now = self._clock()
        last = self._last_logged.get(reason)
        if last is not None and now - last < LOG_EVERY:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last_logged[reason] = now
        more = self._suppressed.pop(reason, 0)
        tail = f" ({more} more since the last such line)" if more else ""
        log.warning("rejected %s: %s%s", peer, detail, tail)


class TokenBucket:
    """exporter-toolkit's rate_limit: `burst` requests at once, refilled one per `interval` seconds."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        refill = (now - self._at) / self._limit.interval
        self._tokens = min(float(self._limit.burst), self._tokens + refill)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class _Rewound(anyio.abc.ByteStream):
    """A stream with bytes already read put back in front, so the TLS layer sees the whole handshake."""

    def __init__(self, stream: anyio.abc.ByteStream, head: bytes) -> None:
        self._stream = stream
        self._head = head

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._head:
            data, self._head = self._head[:max_bytes], self._head[max_bytes:]
            return data
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._stream.extra_attributes


def _context(config: WebConfig) -> ssl.SSLContext | None:
    """The config's SSL context (None without TLS); its errors name the web config like the loader's."""
    if config.tls is None:
        return None
    try:
        return server_context(config.tls)
    except WebConfigError as exc:
        raise WebConfigError(f"web config {config.path}: {exc}") from None


def _reasons(config: WebConfig) -> tuple[str, ...]:
    """The rejection reasons this config can produce, exported from 0 so rate() works from the start."""
    reasons: list[str] = []
    if config.tls is not None:
        reasons += ["plain_http", "tls_handshake"]
        if config.tls.client_auth != "NoClientCert":
            reasons += ["client_cert_missing", "client_cert_invalid"]
        if config.tls.client_allowed_sans:
            reasons.append("client_cert_san")
    if config.basic_auth_users:
        reasons += [Verdict.NO_CREDENTIALS.value, Verdict.BAD_CREDENTIALS.value]
    if config.rate_limit is not None:
        reasons.append("rate_limited")
    return tuple(reasons)


def _handshake_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason code -> our rejection reason."""
    code = exc.reason or ""
    if code == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "client_cert_missing"
    if "CERTIFICATE" in code:
        return "client_cert_invalid"
    return "tls_handshake"


def _subject_alt_names(certificate: object) -> set[str]:
    """Every DNS, IP, e-mail and URI SAN of a peer certificate as ssl's getpeercert() decodes it."""
    if not isinstance(certificate, dict):
        return set()
    return {str(value).rstrip("\n") for _, value in certificate.get("subjectAltName", ())}


def _fingerprint(paths: tuple[Path, ...]) -> Fingerprint:
    """Identity, size and mtime of each file; a missing file has its own fingerprint too."""
    marks: list[tuple[str, int, int, int, int] | tuple[str]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            marks.append((str(path),))
            continue
        marks.append((str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(marks)
