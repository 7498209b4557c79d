"""The `--web.config.file`: Prometheus exporter-toolkit's YAML format, validated into a WebConfig.

The same file node_exporter and dcgm-exporter read, so one file and one habit serve a whole fleet:
TLS certificate and key, TLS versions, client certificates (mTLS), bcrypt `basic_auth_users`,
response headers and a request rate limit. Pure: reading and validating only. Turning it into an
SSL context is tlscontext.py's job, enforcing it webguard.py's.

Where this differs from exporter-toolkit, it refuses rather than weakens: `RequestClientCert` and
`RequireAnyClientCert` (client certificates accepted unverified) and `curve_preferences` (Python's
ssl cannot set a curve list) are errors that say so, never silently ignored settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exporter.validation import first_error

TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuth = Literal["NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")

GO_CIPHER_SUITES: Mapping[str, str | None] = {
    # Go's names (crypto/tls CipherSuites()) -> OpenSSL's. TLS 1.3 suites are not configurable in
    # Go either, so they are accepted and leave OpenSSL's TLS 1.3 defaults as they are (None).
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

ALLOWED_HEADERS = (
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
)
"""exporter-toolkit's list; anything else would let a config override framing or auth headers."""

_BCRYPT_HASH = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class WebConfigError(ValueError):
    """The web config cannot be used; the message is one line and never contains a secret."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _TlsServerConfig(_Strict):
    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None
    key: str | None = None
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: str | None = None
    client_allowed_sans: list[str] = Field(default_factory=list)
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    cipher_suites: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)


class _HttpServerConfig(_Strict):
    http2: bool = True
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _known_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name not in ALLOWED_HEADERS:
                raise ValueError(f"header {name!r} is not one of {', '.join(ALLOWED_HEADERS)}")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} has a line break in its value")
        return headers


class _RateLimit(_Strict):
    interval: str | int = 0
    burst: int = 0


class _WebConfigFile(_Strict):
    tls_server_config: _TlsServerConfig | None = None
    http_server_config: _HttpServerConfig | None = None
    basic_auth_users: dict[str, str] | None = None
    rate_limit: _RateLimit | None = None


@dataclass(frozen=True, slots=True)
class PemSource:
    """PEM material given either as a file (resolved path) or inline in the YAML."""

    path: Path | None = None
    inline: str | None = None

    def describe(self) -> str:
        """For messages: the file name, or 'inline' (never the content, which may be a key)."""
        return str(self.path) if self.path is not None else "inline PEM"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """A validated tls_server_config."""

    cert: PemSource
    key: PemSource
    client_auth: ClientAuth = "NoClientCert"
    client_ca: PemSource | None = None
    client_allowed_sans: frozenset[str] = frozenset()
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    openssl_ciphers: tuple[str, ...] = ()
    prefer_server_ciphers: bool = True


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: one request per `interval` seconds on average, bursts of up to `burst`."""

    interval: float
    burst: int


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Everything the web config asks for; the empty WebConfig() is plain HTTP with no auth."""

    path: Path | None = None
    tls: TlsSettings | None = None
    basic_auth_users: Mapping[str, bytes] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: RateLimit | None = None

    def watched_files(self) -> tuple[Path, ...]:
        """The files whose change means the config must be read again (itself, cert, key, CA)."""
        files = [self.path] if self.path is not None else []
        if self.tls is not None:
            for source in (self.tls.cert, self.tls.key, self.tls.client_ca):
                if source is not None and source.path is not None:
                    files.append(source.path)
        return tuple(files)


def load_web_config(path: Path) -> WebConfig:
    """Read and validate the file; WebConfigError with one readable line on any problem."""
    import yaml  # here, not at the top: cli imports this module for its error type on every start

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebConfigError(f"web config {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise WebConfigError(f"web config {path}: not UTF-8 text") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise WebConfigError(f"web config {path}: {problem}{where}") from None
    try:
        return parse_web_config(document, path)
    except WebConfigError as exc:
        raise WebConfigError(f"web config {path}: {exc}") from None


def parse_web_config(document: Any, path: Path | None = None) -> WebConfig:
    """A decoded YAML document -> WebConfig; relative file names are relative to `path`'s directory."""
    if document is None:
        return WebConfig(path=path)
    if not isinstance(document, dict):
        raise WebConfigError("top level must be a mapping")
    try:
        raw = _WebConfigFile.model_validate(document)
    except ValidationError as exc:
        raise WebConfigError(first_error(exc)) from None
    base = path.parent if path is not None else Path.cwd()
    tls = _tls_settings(raw.tls_server_config, base) if raw.tls_server_config is not None else None
    users = _users(raw.basic_auth_users) if raw.basic_auth_users else None
    headers = tuple(raw.http_server_config.headers.items()) if raw.http_server_config else ()
    return WebConfig(path, tls, users, headers, _rate_limit(raw.rate_limit))


def _tls_settings(raw: _TlsServerConfig, base: Path) -> TlsSettings:
    cert = _pem(raw.cert_file, raw.cert, "cert", base)
    key = _pem(raw.key_file, raw.key, "key", base)
    if cert is None or key is None:
        missing = "cert_file (or cert)" if cert is None else "key_file (or key)"
        raise WebConfigError(f"tls_server_config: {missing} is required")
    client_ca = _pem(raw.client_ca_file, raw.client_ca, "client_ca", base)
    client_auth = _client_auth(raw.client_auth_type, client_ca is not None)
    if client_auth != "NoClientCert" and client_ca is None:
        raise WebConfigError(f"tls_server_config: client_auth_type {client_auth} needs client_ca_file")
    if raw.client_allowed_sans and client_auth != "RequireAndVerifyClientCert":
        raise WebConfigError(
            "tls_server_config: client_allowed_sans needs client_auth_type RequireAndVerifyClientCert"
        )
    if raw.min_version > raw.max_version:
        raise WebConfigError(
            f"tls_server_config: min_version {raw.min_version} is above max_version {raw.max_version}"
        )
    if raw.curve_preferences:
        raise WebConfigError(
            "tls_server_config: curve_preferences is not supported (Python's ssl module cannot set a "
            "curve list); remove it to use OpenSSL's defaults"
        )
    return TlsSettings(
        cert=cert,
        key=key,
        client_auth=client_auth,
        client_ca=client_ca,
        client_allowed_sans=frozenset(raw.client_allowed_sans),
        min_version=raw.min_version,
        max_version=raw.max_version,
        openssl_ciphers=_ciphers(raw.cipher_suites),
        prefer_server_ciphers=raw.prefer_server_cipher_suites,
    )


def _pem(file: str | None, inline: str | None, name: str, base: Path) -> PemSource | None:
    if file and inline:
        raise WebConfigError(f"tls_server_config: {name}_file and {name} exclude each other")
    if file:
        return PemSource(path=base / Path(file).expanduser())
    if inline:
        return PemSource(inline=inline)
    return None


def _client_auth(value: str | None, has_ca: bool) -> ClientAuth:
    """exporter-toolkit's policy names; a CA without a policy means verified certificates required."""
    if value in UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"tls_server_config: client_auth_type {value} accepts certificates without verifying them "
            "and is not supported; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
        )
    if value in (None, ""):
        return "RequireAndVerifyClientCert" if has_ca else "NoClientCert"
    if value == "NoClientCert" and has_ca:
        raise WebConfigError(
            "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert; "
            "set client_auth_type: RequireAndVerifyClientCert"
        )
    if value in ("NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        return value  # type: ignore[return-value]  # narrowed by the membership test above
    raise WebConfigError(f"tls_server_config: unknown client_auth_type {value!r}")


def _ciphers(names: list[str]) -> tuple[str, ...]:
    openssl: list[str] = []
    for name in names:
        if name not in GO_CIPHER_SUITES:
            raise WebConfigError(f"tls_server_config: unknown or insecure cipher suite {name!r}")
        mapped = GO_CIPHER_SUITES[name]
        if mapped is not None:
            openssl.append(mapped)
    return tuple(openssl)


def _users(users: Mapping[str, str]) -> Mapping[str, bytes]:
    checked: dict[str, bytes] = {}
    for user, hashed in users.items():
        if not _BCRYPT_HASH.fullmatch(hashed):
            # Name the user, never the hash: half a config's secrets should not reach a log.
            raise WebConfigError(f"basic_auth_users: the password of {user!r} is not a bcrypt hash")
        checked[user] = hashed.encode("ascii")
    return checked


def _rate_limit(raw: _RateLimit | None) -> RateLimit | None:
    if raw is None:
        return None
    interval = parse_go_duration(raw.interval)
    if raw.burst < 0:
        raise WebConfigError("rate_limit.burst must not be negative")
    if interval == 0:
        return None
    return RateLimit(interval, max(raw.burst, 1))


def parse_go_duration(value: str | int) -> float:
    """Go/Prometheus duration text ('500ms', '1m30s', '0') -> seconds; WebConfigError otherwise."""
    if value in (0, "0"):
        return 0.0
    text = str(value)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise WebConfigError(f"rate_limit.interval {text!r} is not a duration like 1s or 500ms")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
