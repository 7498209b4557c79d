"""TlsSettings -> a server ssl.SSLContext; every failure is a WebConfigError naming the file, not its bytes.

Built once per (re)load of the web config, so a rotated certificate takes effect on the next
connection while connections already open keep the context they were accepted with.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from exporter.web.webconfig import PemSource, TlsSettings, WebConfigError

_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_VERIFY = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """An SSLContext that serves `tls.cert` and enforces the versions, ciphers and client policy."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = _VERSIONS[tls.max_version]
    if tls.openssl_ciphers:
        try:
            context.set_ciphers(":".join(tls.openssl_ciphers))
        except ssl.SSLError:
            raise WebConfigError("tls_server_config: OpenSSL offers none of the cipher_suites") from None
    if tls.prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    # Nothing a scrape needs is worth the renegotiation and compression attack surface.
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    _require(tls.cert, "certificate")
    _require(tls.key, "key")
    with _as_file(tls.cert) as cert_path, _as_file(tls.key) as key_path:
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise WebConfigError(
                f"tls_server_config: certificate {tls.cert.describe()} and key {tls.key.describe()} "
                f"are not a usable pair ({exc.reason or 'invalid PEM'})"
            ) from None
        except OSError as exc:
            raise WebConfigError(
                f"tls_server_config: cannot read {tls.cert.describe()} / {tls.key.describe()}: "
                f"{exc.strerror or exc}"
            ) from None
    context.verify_mode = _VERIFY[tls.client_auth]
    if tls.client_ca is not None:
        _load_client_ca(context, tls.client_ca)
    return context


def _require(source: PemSource, what: str) -> None:
    """OpenSSL's own 'No such file' names neither file; say which one is missing."""
    if source.path is not None and not source.path.exists():
        raise WebConfigError(f"tls_server_config: {what} file {source.path} not found")


def _load_client_ca(context: ssl.SSLContext, ca: PemSource) -> None:
    _require(ca, "client CA")
    try:
        if ca.path is not None:
            context.load_verify_locations(cafile=str(ca.path))
        else:
            context.load_verify_locations(cadata=ca.inline)
    except ssl.SSLError as exc:  # before OSError, of which it is a subclass
        raise WebConfigError(
            f"tls_server_config: client CA {ca.describe()} is not PEM certificates ({exc.reason})"
        ) from None
    except OSError as exc:
        raise WebConfigError(f"tls_server_config: cannot read client CA {ca.describe()}: {exc}") from None


@contextmanager
def _as_file(source: PemSource) -> Iterator[str]:
    """A path OpenSSL can read: the file itself, or inline PEM in an anonymous memory file.

    load_cert_chain takes only paths; a memfd keeps an inline key off the disk and away from other
    users (only this process can open /proc/self/fd/N).
    """
    if source.path is not None:
        yield str(source.path)
        return
    fd = os.memfd_create("neuron-exporter-pem", os.MFD_CLOEXEC)
    try:
        os.write(fd, (source.inline or "").encode())
        yield str(Path("/proc/self/fd") / str(fd))
    finally:
        os.close(fd)
