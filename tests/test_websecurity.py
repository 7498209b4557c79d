"""--web.config.file end to end: the real daemon, real certificates made now, a real HTTPS client.

Each test starts the exporter on the simulator with an exporter-toolkit web config and talks to it
with http.client over ssl, the way Prometheus would: right and wrong client certificates, passwords,
TLS versions and plain HTTP, then certificate and password rotation while it runs.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.daemon import Daemon, sample_value, wait_for
from tests.prometheus import free_port
from tests.test_e2e import run_cli

PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "hunter2-wrong"
UNKNOWN_USER = "mallory-typed-her-password-here"
REFUSED = (ssl.SSLError, ConnectionError, http.client.HTTPException)
"""How a refused TLS connection looks to a client: an alert, a reset, or a closed socket (TLS 1.3
lets the client finish its handshake before the server has checked the client certificate)."""


@dataclass
class Pki:
    """A CA, the exporter's certificate from it, a client certificate from it, and a stranger's."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    stranger: trustme.LeafCert
    dir: Path

    def write_server(self, cert: trustme.LeafCert) -> None:
        """Install `cert` as the exporter's certificate the way cert-manager does: rename over the old."""
        for name, pem in (("server.crt", cert.cert_chain_pems[0]), ("server.key", cert.private_key_pem)):
            staged = self.dir / f".{name}.new"
            pem.write_to_path(str(staged))
            os.replace(staged, self.dir / name)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    pki = Pki(
        ca=ca,
        server=ca.issue_cert("127.0.0.1", "localhost"),
        client=ca.issue_cert("prometheus.monitoring.svc"),
        stranger=trustme.CA().issue_cert("prometheus.monitoring.svc"),
        dir=tmp_path,
    )
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pki.write_server(pki.server)
    return pki


def bcrypt_hash(password: str) -> str:
    """Cost 4 keeps the tests fast; the exporter reads any cost."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def write_web_config(directory: Path, body: str) -> Path:
    path = directory / "web-config.yml"
    staged = directory / ".web-config.yml.new"
    staged.write_text(body)
    os.replace(staged, path)
    return path


def full_config(password_hash: str, extra_tls: str = "") -> str:
    """TLS 1.3 only, verified client certificates, one basic-auth user, one security header."""
    return f"""\
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_ca_file: ca.pem
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS13
{extra_tls}
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prometheus: {password_hash}
"""


def https_get(
    port: int,
    trust: trustme.CA,
    client: trustme.LeafCert | None = None,
    user: str | None = None,
    password: str | None = None,
    max_version: ssl.TLSVersion | None = None,
    path: str = "/metrics",
) -> tuple[int, dict[str, str], bytes]:
    """One GET over HTTPS on a new connection; raises one of REFUSED if the connection is refused."""
    context = ssl.create_default_context()
    trust.configure_trust(context)
    if client is not None:
        client.configure_cert(context)
    if max_version is not None:
        context.maximum_version = max_version
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def scrape(daemon: Daemon, pki: Pki, password: str = PASSWORD) -> str:
    status, _, body = https_get(daemon.port, pki.ca, pki.client, "prometheus", password)
    assert status == 200, body
    return body.decode()


def plain_http_get(port: int) -> bytes:
    """A plain-text HTTP request sent to the TLS port; returns whatever comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def start(tmp_path: Path, web_config: Path) -> Daemon:
    return Daemon(tmp_path, "--simulate", "inf1.xlarge", "--web.config.file", str(web_config))


def rejections(text: str, reason: str) -> float | None:
    return sample_value(text, "neuron_exporter_http_rejections_total", reason=reason)


def test_the_right_client_gets_metrics_and_every_wrong_one_is_refused_and_counted(
    tmp_path: Path, pki: Pki
) -> None:
    password_hash = bcrypt_hash(PASSWORD)
    web_config = write_web_config(tmp_path, full_config(password_hash))
    with start(tmp_path, web_config) as daemon:
        status, headers, body = https_get(daemon.port, pki.ca, pki.client, "prometheus", PASSWORD)
        assert status == 200
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert b"neuron_exporter_build_info" in body

        # No client certificate, and one from a CA the exporter does not trust.
        with pytest.raises(REFUSED):
            https_get(daemon.port, pki.ca, None, "prometheus", PASSWORD)
        with pytest.raises(REFUSED):
            https_get(daemon.port, pki.ca, pki.stranger, "prometheus", PASSWORD)
        # TLS 1.2 where the config asks for 1.3 at least.
        with pytest.raises(REFUSED):
            https_get(daemon.port, pki.ca, pki.client, "prometheus", PASSWORD, ssl.TLSVersion.TLSv1_2)
        # A valid certificate, but no, wrong, or unknown-user credentials.
        status, headers, _ = https_get(daemon.port, pki.ca, pki.client)
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic ")
        assert https_get(daemon.port, pki.ca, pki.client, "prometheus", WRONG_PASSWORD)[0] == 401
        assert https_get(daemon.port, pki.ca, pki.client, UNKNOWN_USER, PASSWORD)[0] == 401
        # Plain HTTP to the TLS port gets Go's answer, as from node_exporter.
        answer = plain_http_get(daemon.port)
        assert answer.startswith(b"HTTP/1.0 400 Bad Request")
        assert b"HTTP request to an HTTPS server" in answer

        text = scrape(daemon, pki)
        assert rejections(text, "client_cert_missing") == 1
        assert rejections(text, "client_cert_invalid") == 1
        assert rejections(text, "tls_handshake") == 1
        assert rejections(text, "no_credentials") == 1
        assert rejections(text, "bad_credentials") == 2
        assert rejections(text, "plain_http") == 1
        assert sample_value(text, "neuron_exporter_web_config_last_reload_successful") == 1

        log = daemon.log()
        assert log.count(b"rejected 127.0.0.1:") == 6  # one line per reason
        assert b"wrong password for user 'prometheus'" in log
        for secret in (PASSWORD, WRONG_PASSWORD, UNKNOWN_USER, password_hash):
            assert secret.encode() not in log


def test_certificates_and_passwords_rotate_without_a_restart(tmp_path: Path, pki: Pki) -> None:
    web_config = write_web_config(tmp_path, full_config(bcrypt_hash(PASSWORD)))
    with start(tmp_path, web_config) as daemon:
        scrape(daemon, pki)
        pid = daemon.proc.pid

        # A new server certificate from a new CA: the next connection presents it.
        new_ca = trustme.CA()
        pki.write_server(new_ca.issue_cert("127.0.0.1"))
        assert https_get(daemon.port, new_ca, pki.client, "prometheus", PASSWORD)[0] == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(daemon.port, pki.ca, pki.client, "prometheus", PASSWORD)

        # A new password in the web config: the old one stops working at once.
        write_web_config(tmp_path, full_config(bcrypt_hash("new password")))
        assert https_get(daemon.port, new_ca, pki.client, "prometheus", PASSWORD)[0] == 401
        status, _, body = https_get(daemon.port, new_ca, pki.client, "prometheus", "new password")
        assert status == 200
        text = body.decode()
        assert sample_value(text, "neuron_exporter_web_config_reloads_total", result="success") == 2

        # A broken key during a rotation: logged, counted, and the last good config stays in force.
        (tmp_path / "server.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
        status, _, body = https_get(daemon.port, new_ca, pki.client, "prometheus", "new password")
        assert status == 200
        text = body.decode()
        assert sample_value(text, "neuron_exporter_web_config_reloads_total", result="failure") == 1
        assert sample_value(text, "neuron_exporter_web_config_last_reload_successful") == 0
        assert b"keeping the previous web config" in daemon.log()
        assert b"not a key" not in daemon.log()

        # Fixing only the key file is noticed too.
        pki.write_server(pki.server)
        assert https_get(daemon.port, pki.ca, pki.client, "prometheus", "new password")[0] == 200
        assert daemon.proc.pid == pid and daemon.proc.poll() is None


def test_client_certificate_must_carry_an_allowed_san(tmp_path: Path, pki: Pki) -> None:
    extra = "  client_allowed_sans:\n    - prometheus.monitoring.svc\n"
    web_config = write_web_config(tmp_path, full_config(bcrypt_hash(PASSWORD), extra))
    other = pki.ca.issue_cert("someone-else.example")
    with start(tmp_path, web_config) as daemon:
        scrape(daemon, pki)
        with pytest.raises(REFUSED):
            https_get(daemon.port, pki.ca, other, "prometheus", PASSWORD)
        assert rejections(scrape(daemon, pki), "client_cert_san") == 1


def issue_without_san(ca: trustme.CA, common_name: str) -> trustme.LeafCert:
    """A client certificate from `ca` with no subjectAltName extension at all, only a common name."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca._private_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return trustme.LeafCert(key_pem, cert.public_bytes(serialization.Encoding.PEM), [])


def test_a_client_certificate_without_any_san_is_refused_under_an_allow_list(
    tmp_path: Path, pki: Pki
) -> None:
    """Its common name is even the allowed one: only SANs count, and having none is not a pass."""
    extra = "  client_allowed_sans:\n    - prometheus.monitoring.svc\n"
    web_config = write_web_config(tmp_path, full_config(bcrypt_hash(PASSWORD), extra))
    no_san = issue_without_san(pki.ca, "prometheus.monitoring.svc")
    with start(tmp_path, web_config) as daemon:
        scrape(daemon, pki)
        with pytest.raises(REFUSED):
            https_get(daemon.port, pki.ca, no_san, "prometheus", PASSWORD)
        assert rejections(scrape(daemon, pki), "client_cert_san") == 1


def test_basic_auth_without_tls_and_rate_limit(tmp_path: Path) -> None:
    """Basic auth alone works over plain HTTP (with a warning); the token bucket answers 429."""
    web_config = write_web_config(
        tmp_path,
        f"basic_auth_users:\n  prometheus: {bcrypt_hash(PASSWORD)}\n"
        "rate_limit:\n  interval: 1h\n  burst: 3\n",
    )
    token = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    with start(tmp_path, web_config) as daemon:
        assert daemon.get("/metrics")[0] == 401
        assert daemon.get("/metrics", {"Authorization": f"Basic {token}"})[0] == 200
        status, _, body = daemon.get("/metrics", {"Authorization": f"Basic {token}"})
        assert status == 200
        assert (
            sample_value(body.decode(), "neuron_exporter_http_rejections_total", reason="rate_limited") == 0
        )
        assert daemon.get("/metrics", {"Authorization": f"Basic {token}"})[0] == 429
        assert b"passwords cross the network in clear text" in daemon.log()


BAD_CONFIGS = [
    ("tls_server_config:\n  cert_file: server.crt\n", "key_file (or key) is required"),
    ("tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n", "nope.crt not found"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: ca.pem\n", "not a usable pair"),
    ("tls_server_config: [\n", "web config"),
    ("tls_server_config:\n  cert_fiel: server.crt\n", "tls_server_config.cert_fiel: unknown key"),
    (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.pem\n",
        "without verifying them",
    ),
    ("basic_auth_users:\n  alice: plaintext-password\n", "the password of 'alice' is not a bcrypt hash"),
]


@pytest.mark.parametrize(("body", "message"), BAD_CONFIGS)
def test_unusable_web_config_exits_2_with_one_line(tmp_path: Path, pki: Pki, body: str, message: str) -> None:
    web_config = write_web_config(tmp_path, body)
    result = run_cli("--simulate", "inf1.xlarge", "--web.config.file", str(web_config))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "plaintext-password" not in result.stderr


def test_missing_web_config_exits_2(tmp_path: Path) -> None:
    absent = tmp_path / "absent.yml"
    result = run_cli("--simulate", "inf1.xlarge", "--web.config.file", str(absent))
    assert result.returncode == 2
    assert result.stderr == f"neuron-exporter: web config {absent}: cannot read: No such file or directory\n"


def test_real_prometheus_scrapes_over_mtls_with_basic_auth(tmp_path: Path, pki: Pki) -> None:
    """Go's TLS client, as Prometheus configures it, against our server: interop, not just Python's."""
    assert shutil.which("prometheus"), (
        "prometheus not found: `make tools` installs Debian's prometheus package"
    )
    web_config = write_web_config(tmp_path, full_config(bcrypt_hash(PASSWORD)))
    pki.client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    pki.client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    with start(tmp_path, web_config) as daemon:
        prometheus_yml = tmp_path / "prometheus.yml"
        prometheus_yml.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: neuron\n"
            "    scheme: https\n"
            "    tls_config: {ca_file: ca.pem, cert_file: client.crt, key_file: client.key}\n"
            f"    basic_auth: {{username: prometheus, password: '{PASSWORD}'}}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{daemon.port}']}}]\n"
        )
        port = free_port()
        with (
            (tmp_path / "prometheus.log").open("wb") as log,
            subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={prometheus_yml}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=log,
                cwd=tmp_path,
            ) as prometheus,
        ):
            try:
                query = f"http://127.0.0.1:{port}/api/v1/query?query=neuron_exporter_build_info"
                wait_for(lambda: _query_has_result(query), 60, "Prometheus to scrape the exporter over mTLS")
            finally:
                prometheus.terminate()
                prometheus.wait(30)
        assert rejections(scrape(daemon, pki), "bad_credentials") == 0


def _query_has_result(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(json.load(response)["data"]["result"])
    except (OSError, ValueError, KeyError):
        return False
