"""The web config as data: exporter-toolkit's format in, a WebConfig or one readable error out."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trustme

from exporter.web.tlscontext import server_context
from exporter.web.webconfig import (
    WebConfig,
    WebConfigError,
    load_web_config,
    parse_go_duration,
    parse_web_config,
)

HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
TLS = {"cert_file": "server.crt", "key_file": "server.key"}


def test_empty_file_means_plain_http(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("# nothing yet\n")
    assert load_web_config(path) == WebConfig(path=path)


def test_relative_files_are_relative_to_the_config_and_are_watched(tmp_path: Path) -> None:
    document = {"tls_server_config": {**TLS, "client_ca_file": "/etc/ca.pem"}}
    config = parse_web_config(document, tmp_path / "web.yml")
    assert config.tls is not None
    assert config.tls.cert.path == tmp_path / "server.crt"
    assert config.watched_files() == (
        tmp_path / "web.yml",
        tmp_path / "server.crt",
        tmp_path / "server.key",
        Path("/etc/ca.pem"),
    )
    # A CA without a policy means what exporter-toolkit makes it mean: verified certificates required.
    assert config.tls.client_auth == "RequireAndVerifyClientCert"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "top level must be a mapping"),
        ({"tls_server_config": {**TLS, "min_version": "TLS13", "max_version": "TLS12"}}, "is above"),
        ({"tls_server_config": {**TLS, "min_version": "SSL3"}}, "tls_server_config.min_version"),
        (
            {"tls_server_config": {**TLS, "client_auth_type": "NoClientCert", "client_ca_file": "c"}},
            "NoClientCert",
        ),
        (
            {"tls_server_config": {**TLS, "client_auth_type": "VerifyClientCertIfGiven"}},
            "needs client_ca_file",
        ),
        ({"tls_server_config": {**TLS, "client_auth_type": "Sometimes"}}, "unknown client_auth_type"),
        ({"tls_server_config": {**TLS, "client_allowed_sans": ["a"]}}, "client_allowed_sans needs"),
        ({"tls_server_config": {**TLS, "cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}}, "cipher suite"),
        ({"tls_server_config": {**TLS, "curve_preferences": ["X25519"]}}, "curve_preferences"),
        ({"tls_server_config": {**TLS, "cert": "PEM"}}, "cert_file and cert exclude each other"),
        ({"http_server_config": {"headers": {"Content-Length": "0"}}}, "is not one of"),
        ({"basic_auth_users": {"alice": HASH[:-1]}}, "the password of 'alice' is not a bcrypt hash"),
        ({"rate_limit": {"interval": "soon", "burst": 1}}, "not a duration"),
    ],
)
def test_invalid_documents_say_what_is_wrong(document: Any, message: str) -> None:
    with pytest.raises(WebConfigError, match=message) as caught:
        parse_web_config(document)
    assert HASH[:-1] not in str(caught.value)


def test_htpasswd_style_2y_hashes_are_accepted() -> None:
    config = parse_web_config({"basic_auth_users": {"alice": HASH.replace("$2b$", "$2y$")}})
    assert config.basic_auth_users is not None


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


def test_inline_pem_cipher_suites_and_versions_reach_the_ssl_context() -> None:
    leaf = trustme.CA().issue_cert("127.0.0.1")
    document = {
        "tls_server_config": {
            "cert": leaf.cert_chain_pems[0].bytes().decode(),
            "key": leaf.private_key_pem.bytes().decode(),
            "min_version": "TLS12",
            "max_version": "TLS12",
            "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"],
        }
    }
    config = parse_web_config(document)
    assert config.tls is not None
    context = server_context(config.tls)
    assert context.minimum_version == context.maximum_version == ssl.TLSVersion.TLSv1_2
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-RSA-AES256-GCM-SHA384"}
    assert context.verify_mode == ssl.CERT_NONE
