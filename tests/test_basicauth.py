"""Basic auth verdicts: configured users only, whatever password the dummy hash of unknown users has."""

from __future__ import annotations

import base64

import anyio
import bcrypt
import pytest

from exporter.web.basicauth import BasicAuth, Verdict, parse_basic

HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "header", [None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()]
)
def test_malformed_authorization_is_no_credentials(header: str | None) -> None:
    assert parse_basic(header) is None


def test_basic_auth_verdicts_and_cache() -> None:
    auth = BasicAuth({"alice": HASH.encode()})

    async def check(header: str | None) -> tuple[Verdict, str | None]:
        return await auth.check(header)

    assert anyio.run(check, _header("alice", "pw")) == (Verdict.OK, "alice")
    assert anyio.run(check, _header("alice", "pw")) == (Verdict.OK, "alice")  # from the cache
    assert anyio.run(check, _header("alice", "nope")) == (Verdict.BAD_CREDENTIALS, "alice")
    # An unknown user's name is not returned: it may be a password typed into the wrong field.
    assert anyio.run(check, _header("pw", "alice")) == (Verdict.BAD_CREDENTIALS, None)
    assert anyio.run(check, _header("alice", "x" * 100)) == (Verdict.BAD_CREDENTIALS, "alice")
    assert anyio.run(check, None) == (Verdict.NO_CREDENTIALS, None)


def test_an_unknown_user_with_the_dummy_hash_password_is_refused() -> None:
    """The dummy hash checks unknown users for equal timing; matching it must never admit anyone."""
    auth = BasicAuth({"alice": HASH.encode()}, dummy_secret=b"the dummy's secret")
    verdict = anyio.run(auth.check, _header("mallory", "the dummy's secret"))
    assert verdict == (Verdict.BAD_CREDENTIALS, None)


def test_the_dummy_secret_is_drawn_at_start_and_differs_each_time() -> None:
    """No password is known to match the dummy hash: two instances hash two different random secrets."""
    first, second = (BasicAuth({"alice": HASH.encode()}) for _ in range(2))
    dummies = [anyio.run(auth._dummy_hash) for auth in (first, second)]
    assert first._dummy_secret != second._dummy_secret
    assert len(first._dummy_secret) >= 32
    assert not bcrypt.checkpw(second._dummy_secret, dummies[0])
    assert bcrypt.checkpw(first._dummy_secret, dummies[0])
    for guess in (b"", b"not a password", b"pw", b"alice"):
        assert not bcrypt.checkpw(guess, dummies[0])
    assert dummies[0][4:6] == HASH.encode()[4:6], "the dummy hash costs what the configured ones cost"
